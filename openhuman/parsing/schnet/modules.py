"""SCHNet's added modules: SimModule, SRM, FTM and the open-vocabulary head.

Notation: B batch, C SAM width, Cc CLIP vision width, K classes, D CLIP embedding (text) width,
h x w the SAM token grid, H x W the input image.

Choices where the paper (figure captions only) leaves details open:
- SimModule: cosine similarity of the L2-normalised CLIP image embedding and text embeddings,
  scaled by CLIP's own logit scale, then softmax over the K classes.
- SRM (Fig. 3b): CLIP stage features are projected down (1x1 conv) into the text space and
  compared (cosine, learnable scale) with the K text embeddings, giving K semantic maps (so the
  module works for any vocabulary, not only the K it was trained with), modulated
  element-wise by f_sim, softmax-normalised over pixels to give K class attention maps; SAM
  features are projected up by `ratio` (1x1 conv); class descriptors = attention (x) SAM features
  (matrix product, K x rC); they are redistributed to pixels with a softmax over the K semantic
  maps (matrix product), projected back down to C and added to f_sv^(i-1). f_sim is multiplied
  by K before modulating so a uniform similarity leaves the maps unchanged. The down-projection
  back to C is zero-initialised so a pretrained SAM starts unchanged.
- FTM (Fig. 4): per layer, f' = f + softmax(f T^T / sqrt(c)) T with T (m x c) learnable; then
  f'' = f' + rho * MLP(f') with one bottleneck MLP (c -> c/4 -> c) shared by all layers of a stage
  width and rho a learnable scalar per layer (initialised to 0.1). The 1/sqrt(c) scale is ours.
- Head (the paper's decoder is not described): each stage map is layer-normalised and projected
  to a common width, summed, upsampled 4x with transposed convolutions (as SAM's mask decoder
  does) and fused with a small stride-4 convolutional stem of the image (fine detail for thin
  limbs), then projected to D; per-pixel logits are cosine similarities with the L2-normalised
  text embeddings of the vocabulary plus a learned background embedding, times a learnable
  temperature. Logits are bilinearly upsampled to the input size.
- Person side (ours, `SchnetConfig.side_head`): text embeddings of "left X" and "right X" stay
  nearly parallel (CLIP is known to be weak on left/right; our from-scratch towers reached cosine
  0.92-0.997), so a cosine head can hardly separate them. With the side head, a class's prompt
  drops its side word and `SideHead` gives a per-pixel logit s of "the person's left" (1x1 conv
  maps of the fused features, weighed by per-image gates computed from the pooled features);
  sided classes add log sigmoid(+-s) to their part logit. So P(left X) + P(right X) is the
  part's probability and s alone splits it. s starts at zero (both sides equal).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SimModule(nn.Module):
    """f_sim = softmax(scale * cos(f_cls, f_txt)): [B, D] x [K, D] -> [B, K]."""

    def forward(self, f_cls: torch.Tensor, f_txt: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
        sim = F.normalize(f_cls, dim=-1) @ F.normalize(f_txt, dim=-1).t()
        return torch.softmax(sim * scale, dim=-1)


class SRM(nn.Module):
    """Semantic-Refinement Module: f_sv'' = f_sv + SRM(f_sv, f_cv, f_sim, f_txt).

    f_sv [B, h, w, C] (SAM layout), f_cv [B, Cc, h, w], f_sim [B, K], f_txt [K, D] -> [B, h, w, C].
    """

    def __init__(self, sam_dim: int, clip_dim: int, embed_dim: int, ratio: float = 0.5) -> None:
        super().__init__()
        inner = max(8, int(sam_dim * ratio))
        self.semantic = nn.Conv2d(clip_dim, embed_dim, 1)  # channel down: Cc -> D (text space)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.up = nn.Linear(sam_dim, inner)  # channel change of SAM features: C -> rC
        self.down = nn.Linear(inner, sam_dim)  # back to C, zero-init
        self.norm = nn.LayerNorm(sam_dim)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, f_sv: torch.Tensor, f_cv: torch.Tensor, f_sim: torch.Tensor, f_txt: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = f_sv.shape
        sem = F.normalize(self.semantic(f_cv).flatten(2), dim=1)  # [B, D, hw]
        txt = F.normalize(f_txt.to(sem.dtype), dim=-1)  # [K, D]
        sem = torch.einsum("kd,bdn->bkn", txt, sem) * self.logit_scale.exp()  # K semantic maps [B, K, hw]
        sem = sem * (f_sim.to(sem.dtype) * f_sim.shape[-1]).unsqueeze(-1)  # modulation; uniform f_sim = 1
        attn_pix = torch.softmax(sem, dim=-1)  # per class, over pixels
        attn_cls = torch.softmax(sem, dim=1)  # per pixel, over classes
        v = self.up(self.norm(f_sv)).reshape(b, h * w, -1)  # [B, hw, rC]
        centres = attn_pix @ v  # [B, K, rC]
        out = attn_cls.transpose(1, 2) @ centres  # [B, hw, rC]
        return f_sv + self.down(out).reshape(b, h, w, -1)


class FTMTokens(nn.Module):
    """Fig. 4a: f' = f + softmax(f T^T / sqrt(c)) T; f [B, h, w, c] -> [B, h, w, c]."""

    def __init__(self, dim: int, num_tokens: int) -> None:
        super().__init__()
        self.tokens = nn.Parameter(torch.randn(num_tokens, dim) * 0.02)
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        attn = torch.softmax((f @ self.tokens.t()) * self.scale, dim=-1)  # [B, h, w, m]
        return f + attn @ self.tokens


class FTMMLP(nn.Module):
    """Fig. 4b's shared lightweight MLP (c -> c/4 -> c), used by every layer of one width."""

    def __init__(self, dim: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, dim // reduction)
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


class FTM(nn.Module):
    """Fine-Tuning Module of one SAM layer: f'' = f' + rho * MLP(f') with f' from the tokens."""

    def __init__(self, dim: int, num_tokens: int, shared_mlp: FTMMLP) -> None:
        super().__init__()
        self.tokens = FTMTokens(dim, num_tokens)
        self.mlp = shared_mlp
        self.rho = nn.Parameter(torch.tensor(0.1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        f1 = self.tokens(f)
        return f1 + self.rho * self.mlp(f1)


def _up_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, stride=2), nn.GroupNorm(1, cout), nn.GELU())


class SideHead(nn.Module):
    """Per-pixel logit of "the person's left" [B, 1, h, w] and its per-image gates [B, J].

    s = sum_j g_j * h_j(x): the maps h (1x1 conv of the head's fused features x) place a pixel in
    the body's layout in the image, and the gates g (linear on the layer-normalised average- and
    max-pooled x) weigh them per image. So one image-level cue, which way the person faces, can
    flip the side of every pixel at once: the side is the facing combined with where the limb
    lies, and neither alone tells it. Gate 0 starts at 1 (a plain per-pixel term), the others
    near 0; the maps start at zero (both sides equal). Training's facing loss supervises gate 1.
    """

    def __init__(self, width: int, maps: int = 4) -> None:
        super().__init__()
        self.maps = nn.Conv2d(width, maps, 1)
        nn.init.zeros_(self.maps.weight)
        nn.init.zeros_(self.maps.bias)  # type: ignore[arg-type]  # a Conv2d built with a bias
        gate = nn.Linear(2 * width, maps)
        nn.init.normal_(gate.weight, std=0.02)
        with torch.no_grad():
            gate.bias.copy_(F.one_hot(torch.tensor(0), maps).float())
        self.gate = nn.Sequential(nn.LayerNorm(2 * width), gate)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.gate(torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1))  # [B, J]
        return torch.einsum("bjhw,bj->bhw", self.maps(x), g)[:, None], g


class ParsingHead(nn.Module):
    """Multi-stage SAM features -> per-pixel embeddings -> cosine logits against class embeddings.

    stages: list of S maps [B, C, h, w]; image [B, 3, H, W] in [0, 1]; text [K, D].
    Output logits [B, K + 1, H, W] (channel 0 = background).
    """

    def __init__(self, sam_dim: int, num_stages: int, embed_dim: int, width: int = 64, side_head: bool = False) -> None:
        super().__init__()
        self.proj = nn.ModuleList(
            nn.Sequential(nn.GroupNorm(1, sam_dim), nn.Conv2d(sam_dim, width, 1)) for _ in range(num_stages)
        )
        self.up = nn.Sequential(_up_block(width, width), _up_block(width, width))
        self.stem = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1),
            nn.GroupNorm(1, width),
            nn.GELU(),
        )
        self.fuse = nn.Sequential(nn.Conv2d(2 * width, width, 3, padding=1), nn.GroupNorm(1, width), nn.GELU())
        self.embed = nn.Conv2d(width, embed_dim, 1)
        self.background = nn.Parameter(torch.randn(embed_dim) * 0.02)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.side = SideHead(width) if side_head else None

    def forward(
        self, stages: list[torch.Tensor], image: torch.Tensor, text: torch.Tensor, side: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.forward_with_gates(stages, image, text, side)[0]

    def forward_with_gates(
        self, stages: list[torch.Tensor], image: torch.Tensor, text: torch.Tensor, side: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, the side head's gates [B, J] or None). With the side head, `side` [K] is +1
        for classes of the person's left, -1 right, 0 neither."""
        x = sum(p(s) for p, s in zip(self.proj, stages, strict=True))
        x = self.up(x)  # [B, width, 4h, 4w]
        detail = self.stem(image)  # [B, width, H/4, W/4]
        if x.shape[-2:] != detail.shape[-2:]:
            x = F.interpolate(x, size=detail.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse(torch.cat([x, detail], dim=1))
        emb = F.normalize(self.embed(x), dim=1)  # [B, D, H/4, W/4]
        classes = F.normalize(torch.cat([self.background[None], text.to(emb.dtype)], dim=0), dim=-1)
        logits = torch.einsum("bdhw,kd->bkhw", emb, classes) * self.logit_scale.exp().clamp(max=100.0)
        gates = None
        if self.side is not None and side is not None:
            s, gates = self.side(x)
            sign = torch.cat([side.new_zeros(1), side]).to(logits.dtype).view(1, -1, 1, 1)
            logits = logits + F.logsigmoid(sign * s.to(logits.dtype)) * sign.abs()
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False), gates
