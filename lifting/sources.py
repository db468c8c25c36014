"""Per-frame 3D point sources: fused depth maps, user point clouds/meshes, or a visual hull.

Each source returns `Points` (xyz, optional normals, optional colours) in world coordinates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lifting.config import LiftingConfig
from lifting.geometry import axes_meeting_point, pixel_index, pixel_rays, project_points, unproject_depth
from lifting.keypoints import in_capsules
from openhuman.arrays import mask_box, present_ids
from openhuman.errors import InputError
from openhuman.types import CameraView, Frame, PartParse

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".ply", ".obj", ".off", ".stl", ".glb", ".gltf", ".npz")


@dataclass(frozen=True)
class Points:
    xyz: np.ndarray
    """float32 [N, 3] world coordinates, metres."""
    normals: np.ndarray | None = None
    """float32 [N, 3] unit outward normals, or None when unknown."""
    rgb: np.ndarray | None = None
    """uint8 [N, 3] colours, or None when unknown."""
    neighbors: np.ndarray | None = None
    """int32 [N, k] indices of each point's k nearest points in this set (itself first; -1 where
    that neighbour was dropped since), or None when not computed (`remove_outliers` keeps them)."""

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    def subset(self, keep: np.ndarray) -> Points:
        """The points selected by a bool [N] or index array (neighbour indices follow them)."""
        neighbors = None
        if self.neighbors is not None:
            idx = np.arange(len(self))[keep]
            new = np.full(len(self) + 1, -1, np.int32)  # old index -> new index; the extra -1 maps -1
            new[idx] = np.arange(len(idx), dtype=np.int32)
            neighbors = new[self.neighbors[idx]]
        return Points(
            self.xyz[keep],
            None if self.normals is None else self.normals[keep],
            None if self.rgb is None else self.rgb[keep],
            neighbors,
        )


def empty_points() -> Points:
    return Points(np.zeros((0, 3), np.float32))


def person_mask(parse: PartParse) -> np.ndarray:
    """bool [H, W]: pixels the parse assigns to a person (person id >= 0 or a body part)."""
    return (np.asarray(parse.person_ids) >= 0) | (np.asarray(parse.labels) > 0)


def _morph(mask: np.ndarray, px: int, erode: bool) -> np.ndarray:
    if px <= 0:
        return mask
    import cv2

    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    op = cv2.erode if erode else cv2.dilate
    return op(mask.astype(np.uint8), kernel).astype(bool)


def voxel_downsample(pts: Points, voxel: float) -> Points:
    """Average the points (and colours/normals) falling in each voxel of size `voxel` metres."""
    if voxel <= 0 or len(pts) == 0:
        return pts
    ijk = np.floor(pts.xyz / voxel).astype(np.int64)
    ijk -= ijk.min(0)
    dims = ijk.max(0) + 1
    key = (ijk[:, 0] * dims[1] + ijk[:, 1]) * dims[2] + ijk[:, 2]
    # np.unique(key, return_inverse=True) by hand: a stable sort is faster on these partly sorted keys
    order = np.argsort(key, kind="stable")
    first = np.empty(len(key), bool)
    first[0] = True
    np.not_equal(key[order[1:]], key[order[:-1]], out=first[1:])
    inv = np.empty(len(key), np.int64)
    inv[order] = np.cumsum(first) - 1
    counts = np.bincount(inv)

    def mean(a: np.ndarray) -> np.ndarray:
        """float64 per-voxel means of the columns of a (bincount sums in float64)."""
        cols = [np.bincount(inv, weights=a[:, j], minlength=len(counts)) for j in range(a.shape[1])]
        return np.stack(cols, axis=1) / counts[:, None]

    xyz = mean(pts.xyz).astype(np.float32)
    rgb = None if pts.rgb is None else np.clip(np.rint(mean(pts.rgb)), 0, 255).astype(np.uint8)
    normals = None
    if pts.normals is not None:
        n = mean(pts.normals)
        normals = (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)).astype(np.float32)
    return Points(xyz, normals, rgb)


def remove_outliers(pts: Points, neighbors: int, std_ratio: float, bound: float = np.inf) -> Points:
    """Statistical outlier removal: drop points whose mean distance to their k nearest
    neighbours exceeds the cloud mean by `std_ratio` standard deviations (scipy cKDTree).

    bound: metres within which most points have their k neighbours (a few voxel sizes); it only
    makes the search cheaper, the result is the same for any value.
    """
    if neighbors <= 0 or len(pts) <= neighbors + 1:
        return pts
    from scipy.spatial import cKDTree

    xyz = np.asarray(pts.xyz, np.float64)
    tree = cKDTree(xyz)
    # Most points have their neighbours within a few voxels; a search bounded there is cheaper, and
    # the few points it leaves short of neighbours are searched again unbounded (same distances).
    # One thread: the other cores are busy parsing.
    d, nn = tree.query(xyz, k=neighbors + 1, distance_upper_bound=bound, workers=1)
    far = ~np.isfinite(d[:, -1])
    if far.any():
        d[far], nn[far] = tree.query(xyz[far], k=neighbors + 1, workers=1)
    mean_d = d[:, 1:].mean(1)
    keep = mean_d <= mean_d.mean() + std_ratio * mean_d.std()
    # the neighbours found here also serve the label vote after fusion (`LiftingConfig.vote_rounds`)
    return Points(pts.xyz, pts.normals, pts.rgb, nn.astype(np.int32)).subset(keep)


def depth_points(
    cameras: dict[str, CameraView],
    depths: dict[str, np.ndarray],
    parses: dict[str, PartParse],
    frames: dict[str, Frame],
    cfg: LiftingConfig,
) -> Points:
    """Fuse the person pixels of all views' depth maps into one cleaned cloud.

    depths: view id -> float [H, W] metres, NaN/inf/0 = no reading. Only pixels that the view's
    parse marks as person (eroded by `cfg.mask_erode_px`) within [depth_min, depth_max] are used.
    """
    xyz_all, rgb_all, normals_all = [], [], []
    for vid, depth in depths.items():
        cam = cameras[vid]
        d = np.asarray(depth, dtype=np.float32)
        mask = _morph(person_mask(parses[vid]), cfg.mask_erode_px, erode=True) if vid in parses else None
        xyz, pix = unproject_depth(d, cam, mask)
        z = d[pix[:, 0], pix[:, 1]]
        keep = (z >= cfg.depth_min) & (z <= cfg.depth_max) & np.isfinite(z)
        if not keep.any():  # (the lifter warns about depth maps with no reading at all)
            log.debug("view %s: no valid depth reading on the person; skipped", vid)
            continue
        if not keep.all():
            xyz, pix = xyz[keep], pix[keep]
        xyz_all.append(xyz)
        normals_all.append(depth_normals(d, cam, pix))
        if vid in frames:
            rgb_all.append(frames[vid].rgb.reshape(-1, 3)[pix[:, 0] * cam.width + pix[:, 1]])
        else:
            rgb_all.append(np.full((len(xyz), 3), 200, np.uint8))
    if not xyz_all or sum(len(x) for x in xyz_all) == 0:
        return empty_points()
    pts = Points(np.concatenate(xyz_all), np.concatenate(normals_all), np.concatenate(rgb_all))
    pts = voxel_downsample(pts, cfg.voxel_size)
    if cfg.silhouette_max_px > 0 and len(parses) >= 2:
        dist = silhouette_distances(pts.xyz, cameras, parses, cfg.silhouette_max_px)
        k = min(max(cfg.silhouette_views, 1), len(parses)) - 1
        keep = np.partition(dist, k, axis=0)[k] <= cfg.silhouette_max_px
        if not keep.all():
            log.debug("depth source: %d of %d points far from the views' silhouettes", (~keep).sum(), len(pts))
        pts = pts.subset(keep)
    bound = 3 * cfg.voxel_size if cfg.voxel_size > 0 else np.inf
    return remove_outliers(pts, cfg.outlier_neighbors, cfg.outlier_std_ratio, bound)


def depth_normals(depth: np.ndarray, cam: CameraView, pix: np.ndarray, max_jump: float = 0.05) -> np.ndarray:
    """float32 [N, 3] world unit normals at depth pixels `pix` (int [N, 2] row, col), facing the camera.

    From the cross product of central differences of the back-projected depth map; where a
    neighbour is missing or lies across a depth jump (> max_jump metres) the normal falls back to
    the direction back to the camera. Only the box around the pixels (one pixel wider) is
    back-projected.
    """
    n_pix = len(pix)
    if n_pix == 0:
        return np.zeros((0, 3), np.float32)
    h, w = depth.shape
    r, c = pix[:, 0], pix[:, 1]
    y0, y1, x0, x1 = int(r.min()) - 1, int(r.max()) + 2, int(c.min()) - 1, int(c.max()) + 2
    bh, bw = y1 - y0, x1 - x0
    z = np.full((bh, bw), np.nan)  # NaN: no reading, or outside the image
    z[max(-y0, 0) : bh - max(y1 - h, 0), max(-x0, 0) : bw - max(x1 - w, 0)] = depth[max(y0, 0) : y1, max(x0, 0) : x1]
    rows, cols = np.mgrid[y0:y1, x0:x1]
    xy = pixel_rays(cam, np.stack([cols.ravel(), rows.ravel()], 1))
    zf = z.ravel()
    P = (xy[:, 0] * zf, xy[:, 1] * zf, zf)  # the box back-projected: camera x, y, z
    f = (r - y0) * bw + (c - x0)  # each pixel's index in the box; +-1 right/left, +-bw below/above
    dx = np.stack([a[f + 1] - a[f - 1] for a in P])
    dy = np.stack([a[f + bw] - a[f - bw] for a in P])
    centre = np.stack([a[f] for a in P])
    n = np.stack([dx[1] * dy[2] - dx[2] * dy[1], dx[2] * dy[0] - dx[0] * dy[2], dx[0] * dy[1] - dx[1] * dy[0]])
    ok = np.isfinite(n).all(0) & (np.abs(dx[2]) < 2 * max_jump) & (np.abs(dy[2]) < 2 * max_jump)
    n = np.where(ok, n, -centre)  # fallback: facing the camera
    n /= np.maximum(np.sqrt((n * n).sum(0)), 1e-12)
    n *= np.where((n * centre).sum(0) > 0, -1.0, 1.0)
    R = np.asarray(cam.world_from_cam, np.float64)[:3, :3]
    return np.nan_to_num(R @ n).T.astype(np.float32)


def silhouette_distances(
    xyz: np.ndarray, cameras: dict[str, CameraView], parses: dict[str, PartParse], max_px: float = np.inf
) -> np.ndarray:
    """float32 [V, N]: per view, the pixel distance from each point's projection to the nearest
    person pixel of that view (0 inside the mask; inf out of frame, behind the camera, or farther
    than `max_px`: then only the window `max_px` around the mask is searched, which is cheaper).

    Occlusion does not matter: a point of the body projects onto or next to the body's silhouette
    in every view, so only mask errors (a few pixels) separate it from the mask.
    """
    import cv2

    dists = np.full((len(parses), len(xyz)), np.inf, np.float32)
    for i, (vid, parse) in enumerate(parses.items()):
        cam = cameras[vid]
        person = person_mask(parse)
        box = mask_box(person, int(np.ceil(max_px)) + 1) if np.isfinite(max_px) else (0, cam.height, 0, cam.width)
        if box is None:  # nobody in this view: every point is farther than max_px
            continue
        y0, y1, x0, x1 = box
        # exact inside the window: it holds every person pixel, and the distance transform's
        # shortest paths between two of its pixels stay inside it
        dt = cv2.distanceTransform((~person[y0:y1, x0:x1]).astype(np.uint8), cv2.DIST_L2, 3)
        flat, ok = pixel_index(*project_points(xyz, cam), cam.width, cam.height)
        row, col = np.divmod(flat, cam.width)
        ok &= (row >= y0) & (row < y1) & (col >= x0) & (col < x1)
        d = dt[row[ok] - y0, col[ok] - x0]
        dists[i, ok] = np.where(d <= max_px, d, np.inf)
    return dists


def find_geometry_file(folder: str | Path, frame_index: int) -> Path | None:
    """The file for `frame_index` in a per-frame geometry folder (`000012.ply`, `12.obj`, ...)."""
    root = Path(folder)
    for stem in (f"{frame_index:06d}", str(frame_index)):
        for suffix in MESH_SUFFIXES:
            p = root / f"{stem}{suffix}"
            if p.is_file():
                return p
    return None


def load_geometry(path: str | Path, n_samples: int, seed: int = 0) -> Points:
    """Points from a point cloud or mesh file (PLY/OBJ/... via trimesh; NPZ with `xyz`).

    Meshes are sampled uniformly on their surface (`n_samples` points, with face normals).
    """
    p = Path(path)
    if p.suffix == ".npz":
        with np.load(p) as data:
            if "xyz" not in data:
                raise InputError(f"{p} holds no 'xyz' array; save points as np.savez(path, xyz=...)")
            return Points(np.asarray(data["xyz"], np.float32).reshape(-1, 3))
    import trimesh

    try:
        geom: Any = trimesh.load(p, process=False)
    except Exception as exc:  # trimesh raises many types for unreadable files
        raise InputError(f"cannot read geometry file {p}: {exc}") from None
    if isinstance(geom, trimesh.Scene):
        geom = geom.dump(concatenate=True) if geom.geometry else trimesh.PointCloud(np.zeros((0, 3)))
    if isinstance(geom, trimesh.Trimesh) and len(geom.faces):
        xyz, face = trimesh.sample.sample_surface(geom, n_samples, seed=seed)
        return Points(np.asarray(xyz, np.float32), np.asarray(geom.face_normals[face], np.float32))
    verts = np.asarray(getattr(geom, "vertices", np.zeros((0, 3))), np.float32).reshape(-1, 3)
    colors = getattr(geom, "colors", None)
    rgb = np.asarray(colors)[:, :3].astype(np.uint8) if colors is not None and len(colors) == len(verts) else None
    return Points(verts, None, rgb)


def _hull_box(cameras: list[CameraView], cfg: LiftingConfig) -> tuple[np.ndarray, np.ndarray]:
    if cfg.hull_bounds is not None:
        if len(cfg.hull_bounds) != 6:
            raise InputError("lifting.hull_bounds must be [xmin, ymin, zmin, xmax, ymax, zmax]")
        b = np.asarray(cfg.hull_bounds, np.float64)
        return b[:3], b[3:]
    c = axes_meeting_point(cameras)
    r = 0.6 * float(np.median([np.linalg.norm(cam.center - c) for cam in cameras]))
    return c - r, c + r


def _carve(centers: np.ndarray, cameras: list[CameraView], masks: list[np.ndarray]) -> np.ndarray:
    """bool [N]: voxel centres [N, 3] that fall inside every view's mask."""
    occ = np.ones(len(centers), bool)
    for cam, mask in zip(cameras, masks, strict=True):
        idx = np.nonzero(occ)[0]
        uv, z = project_points(centers[idx], cam)
        flat, inside = pixel_index(uv, z, cam.width, cam.height)
        occ[idx] = inside & mask.ravel()[flat]
    return occ


def _grid(lo: np.ndarray, hi: np.ndarray, step: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    n = np.maximum(np.ceil((hi - lo) / step).astype(int), 1)
    axes = [lo[i] + (np.arange(n[i]) + 0.5) * step for i in range(3)]
    g = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    return g, (int(n[0]), int(n[1]), int(n[2]))


def visual_hull(
    cameras: dict[str, CameraView],
    parses: dict[str, PartParse],
    cfg: LiftingConfig,
    capsules: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> Points:
    """Carve the person masks on a voxel grid (coarse then fine), surface the hull with
    marching cubes and sample `cfg.hull_samples` points on it (with normals); with
    `cfg.hull_rim_distance`, keep those near the mask edges of two views (`inside_distances`).

    capsules: (start [B, 3], end [B, 3], radius [B]) per person (`keypoints.skeleton_capsules`):
    the fine grid's voxels outside all of them are cut away too, so the surface follows the
    capsules where the hull is looser than they are."""
    vids = [v for v in parses if v in cameras]
    masks = [_morph(person_mask(parses[v]), cfg.hull_mask_dilate_px, erode=False) for v in vids]
    # a view that shows nobody (the parser missed the person, or they are out of its frame) would
    # carve the whole hull away: it is left out, and the views that show the person carve it
    seen = [i for i, m in enumerate(masks) if m.any()]
    if len(seen) < 2:
        log.warning("visual hull needs a person in at least 2 views; %d of %d views show one", len(seen), len(vids))
        return empty_points()
    if len(seen) < len(vids):
        log.debug("visual hull: %d of %d views show nobody and are left out", len(vids) - len(seen), len(vids))
    cams = [cameras[vids[i]] for i in seen]
    masks = [masks[i] for i in seen]
    lo, hi = _hull_box(cams, cfg)
    coarse = max(float(np.max(hi - lo)) / 48, cfg.hull_voxel_size)
    g, _ = _grid(lo, hi, coarse)
    occ = _carve(g, cams, masks)
    if not occ.any():
        log.warning("visual hull: the views' person masks do not intersect in 3D")
        return empty_points()
    lo, hi = g[occ].min(0) - coarse, g[occ].max(0) + coarse
    step = cfg.hull_voxel_size
    g, shape = _grid(lo, hi, step)
    occ = _carve(g, cams, masks)
    if capsules:
        occ[occ] = in_capsules(g[occ], capsules)
    vol = occ.reshape(shape)
    if vol.sum() < 8:
        return empty_points()
    pts = _surface_sample(vol, lo, step, cfg.hull_samples)
    # one person only: where two overlap in a view, each projects deep inside their joint mask
    # there, and the rims of one would be taken for the inside of both (a two-person dance lost
    # 7 of every 8 points)
    if cfg.hull_rim_distance > 0 and max(len(present_ids(np.asarray(parses[v].person_ids))) for v in vids) <= 1:
        inside = np.partition(inside_distances(pts.xyz, cams, masks), 1, axis=0)[1]  # 2nd smallest over the views
        pts = pts.subset(inside <= cfg.hull_rim_distance)
    return pts


def inside_distances(xyz: np.ndarray, cams: list[CameraView], masks: list[np.ndarray]) -> np.ndarray:
    """float32 [V, N]: how deep inside each view's mask each point projects, in metres at the
    point's depth (the pixel distance to the nearest pixel outside the mask times depth / fx); 0
    outside the mask, inf where the point falls outside the image or behind the camera."""
    import cv2

    out = np.full((len(cams), len(xyz)), np.inf, np.float32)
    for i, (cam, mask) in enumerate(zip(cams, masks, strict=True)):
        dt = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
        uv, z = project_points(xyz, cam)
        flat, ok = pixel_index(uv, z, cam.width, cam.height)
        out[i, ok] = dt.ravel()[flat[ok]] * z[ok] / float(cam.K[0, 0])
    return out


def _surface_sample(vol: np.ndarray, lo: np.ndarray, step: float, n_samples: int) -> Points:
    import trimesh
    from skimage.measure import marching_cubes

    padded = np.pad(vol.astype(np.float32), 1)
    verts, faces, _, _ = marching_cubes(padded, level=0.5)
    verts = lo + (verts - 1 + 0.5) * step
    mesh = trimesh.Trimesh(verts, faces[:, ::-1], process=False)
    xyz, face = trimesh.sample.sample_surface(mesh, n_samples, seed=0)
    normals = mesh.face_normals[face]
    # marching cubes' winding varies with the volume; orient normals away from the hull centre
    flip = np.sum((xyz - xyz.mean(0)) * normals, 1) < 0
    if flip.mean() > 0.5:
        normals = -normals
    return Points(np.asarray(xyz, np.float32), np.asarray(normals, np.float32))
