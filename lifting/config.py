"""Multi-view lifting and export configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class LiftingConfig:
    source: Literal["auto", "depth", "mesh", "hull"] = "auto"
    """Where 3D points come from: depth maps, user point clouds/meshes, or a visual hull; auto
    picks the first available in that order."""
    voxel_size: float = 0.015
    """Voxel downsampling size in metres. 0.015 (the hull's fine grid too) scored the same as
    0.01 on ten synthetic clips (3D mIoU -0.002, 2D +0.003 on average) with half the points, and
    the pipeline ran ~15 % faster; 0.01 gives denser clouds."""
    visibility_tolerance: float = 0.02
    """A point is visible in a view if its depth is within this many metres of the z-buffer."""
    temporal_window: int = 5
    """Frames voted over for 4D label consistency (1 = none). 5 beat 3 on every one of ten
    synthetic clips once the past points follow the body (`temporal_motion`); without that, the
    longer window lagged behind fast motion."""

    # --- point sources ------------------------------------------------------------------------
    geometry_dir: str | None = None
    """Folder with one point cloud or mesh per frame for `source="mesh"` (PLY/OBJ/OFF/STL/GLB,
    named by frame index: `000012.ply` or `12.obj`)."""
    mesh_samples: int = 50000
    """Points sampled from the surface of a user's mesh (`source="mesh"`)."""
    depth_min: float = 0.05
    """Depth readings nearer than this (metres) are ignored."""
    depth_max: float = 20.0
    """Depth readings farther than this (metres) are ignored."""
    mask_erode_px: int = 0
    """Person masks are eroded by this many pixels before unprojecting depth (drops flying
    pixels on silhouette edges); 0 = off."""
    silhouette_max_px: float = 12.0
    """Depth source: keep a point only if its projection lies within this many pixels of the
    person mask in at least `silhouette_views` views (out of frame counts as far). Body points
    lie on or next to the silhouettes, occluded or not; flying pixels on silhouette edges
    unproject metres away, near no other view's mask. 0 = off."""
    silhouette_views: int = 2
    """Views that must agree for `silhouette_max_px` (2 = the point's own view and one more: thin
    limbs that some views' masks miss are kept)."""
    outlier_neighbors: int = 16
    """Statistical outlier removal: neighbours per point (0 = off). The neighbour vote
    (`vote_rounds`) votes over the same neighbours: 16 scored 0.004-0.010 3D mIoU above 8 on
    ten synthetic clips, for ~13 ms more a time step."""
    outlier_std_ratio: float = 2.5
    """Statistical outlier removal: drop points whose mean neighbour distance exceeds the
    cloud's mean by this many standard deviations."""
    hull_voxel_size: float = 0.015
    """Visual hull voxel size in metres (fine grid)."""
    hull_bounds: list[float] | None = None
    """Visual hull search box [xmin, ymin, zmin, xmax, ymax, zmax] in metres; None = around the
    point nearest to all optical axes, sized from the camera distances."""
    hull_mask_dilate_px: int = 0
    """Person masks are dilated by this many pixels before carving (tolerates calibration error at
    the cost of a fatter hull; 0 suits exact calibration)."""
    hull_skeleton_margin: float = 1.25
    """A visual hull from few views is loose: 4 views leave it a box around each limb and block
    the gaps between limbs. With landmarks (the mediapipe backend), the hull is also cut to
    capsules around the person's triangulated bones (`lifting.keypoints.skeleton_capsules`), each
    as wide as this factor times the bone's half-width, which the views' silhouettes measure,
    plus `hull_skeleton_pad` metres. 0 = off; a frame where some person's skeleton is
    incomplete is not cut either."""
    hull_skeleton_pad: float = 0.01
    """Metres added to every capsule's radius (`hull_skeleton_margin`)."""
    hull_samples: int = 100000
    """Points sampled on the visual hull's surface, before `hull_rim_distance` keeps about half."""
    hull_rim_distance: float = 0.01
    """Keep only the visual hull points that lie within this many metres of the person mask's
    edge in at least two views (measured inside the masks, at the point's depth; 0 = keep all).
    A hull touches the body only along its rims, the curves where a view's rays graze the body
    and which project onto that view's silhouette edge; the hull surface that projects deep
    inside the silhouettes of all views but one fills concavities and the gaps between limbs.
    Frames where some view shows more than one person are not filtered: there one person's rims
    can lie deep inside the joint silhouette of both. Hull runs on ten synthetic clips (mediapipe,
    4 views x 40 frames): 3D mIoU 0.645 -> 0.693, body-point flips 0.068 -> 0.080; five lying or
    rolling clips 0.415 -> 0.464 (s24; README, "Multi-view lifting and export")."""
    hull_skeleton_vote: float = 0.75
    """Visual hull points also take a vote from the same skeleton: the part of the nearest bone
    (upper arm between shoulder and elbow, and so on, sides checked with `body_left`), weighted
    this many times the views' own votes among the parts, at the points the views give a part
    (background stays where the views put it). A hull lies off the surface the views saw, so
    their labels land on it less exactly than on depth points. Ten synthetic clips (mediapipe,
    4 views): 3D mIoU 0.621 -> 0.648 at 0.75 (0.4: lower on the four clips run, 1.5: 0.644,
    3: 0.643). 0 = off; clouds from depth or meshes never take it (a wash there, s22)."""

    # --- label fusion -------------------------------------------------------------------------
    splat_radius_px: int = 1
    """Half-size in pixels of each point's footprint in the visibility z-buffer (closes holes
    between sparse points so hidden surfaces stay hidden)."""
    occlusion_gap: float = 0.05
    """A point more than this many metres behind the nearest point within the splat footprint
    is treated as seen through a hole in a nearer surface, hence hidden."""
    min_view_cos: float = 0.1
    """Lower clamp of the viewing-angle weight (cosine between normal and ray)."""
    drop_background: bool = True
    """Drop points that the views label as background (class 0)."""
    fill_neighbors: int = 3
    """Points no view sees take the majority label of this many seen neighbours (confidence 0)."""
    side_radius: float = 0.025
    """One side per limb: the fused points of one limb part type (left or right) that connect
    at about this many metres (`fusion.one_side_per_limb`) form one limb (or two touching ones);
    it takes its majority side throughout when that side holds `side_min_share` of it. Removes
    left/right speckle where views disagree. 0 = off."""
    vote_rounds: int = 4
    """Depth clouds: after fusion each kept point takes the confidence-weighted majority label of
    itself and its `outlier_neighbors` nearest points (those outlier removal found: no extra
    search), repeated this many times (`fusion.neighbour_vote`; each round reaches a little
    farther). Removes isolated points of another part where views disagree. 0 = off. Hull and
    mesh points are not voted: a neighbour search on their ~50k points costs ~0.1 s a frame, and
    on a hull it gained only 0.004 3D mIoU."""
    side_min_share: float = 0.6
    """Majority a limb piece needs before `side_radius` gives it one side (an even split is two
    touching limbs and is left alone)."""
    relabel_views: bool = True
    """Give the views' 2D labels back from the fused cloud: each part pixel takes the label of the
    3D point it sees (multi-view consensus), and with depth maps, part pixels that show the scene
    behind the person become background (`relabel_behind`). Only for depth or mesh points: a
    visual hull is too loose and made the views worse. False: the 2D labels are each view's own
    parse."""
    relabel_max_px: int = 2
    """`relabel_views`: a pixel takes the label of the nearest seen point within this many pixels
    (points are sparser than pixels); farther ones keep their own label."""
    relabel_min_confidence: float = 0.7
    """`relabel_views` uses only points whose (smoothed) confidence is at least this: where the
    views or frames disagree, a pixel keeps its own label."""
    relabel_behind: float = 0.1
    """`relabel_views` with a depth map: a part pixel whose depth reading lies more than this many
    metres behind every point the view sees within `relabel_search_px` is background (the
    parser's silhouette spilled onto the scene). 0 = each view keeps its silhouette."""
    relabel_fill: float = 0.02
    """`relabel_views` with a depth map: a background pixel next to a seen point (within
    `relabel_max_px`) whose depth reading lies within this many metres of that point's depth
    takes its label: the parser's silhouette missed a limb that other views saw. 0 = off. On ten
    synthetic clips 2D mIoU rose on every clip, by 0.003 on average (cartwheel, jump, kick,
    spinkick +0.005-0.008); 0.01 and 0.03 scored a little lower, 0.05 lower still."""
    relabel_search_px: int = 8
    """`relabel_behind`: the window (pixels each way) searched for seen points; pixels with none
    in it keep their label."""
    lr_correction: Literal["limbs", "keypoints", "off"] = "limbs"
    """Swap the left/right channels of a view whose 2D landmarks disagree with the triangulated
    3D skeleton (needs PartParse.keypoints in at least 3 views): `limbs` checks the arms and the
    legs each on their own (a parser often swaps one pair alone) and settles a tie (half of the
    views against the other half) by the body's own left; `keypoints` swaps all of a view's limbs
    or none, with a minority of views only."""
    person_match_px: float = 25.0
    """Two views' people are one person when their landmarks (left/right-free ones) lie within
    this median epipolar distance in pixels (`lifting.people`): each person then has one id in
    every view and in the cloud. 0 = take the views' own person ids as shared."""
    keypoint_min_visibility: float = 0.5
    """2D landmarks below this visibility are not used for triangulation."""
    ransac_threshold_px: float = 20.0
    """Reprojection error (pixels) under which a view is an inlier of a triangulated landmark."""

    # --- temporal (4D) ------------------------------------------------------------------------
    temporal_radius: float = 0.05
    """Points of consecutive frames within this distance (metres) vote for each other's labels."""
    temporal_decay: float = 0.7
    """Weight of a frame k steps back is decay**k relative to the current frame."""
    temporal_motion: Literal["parts", "none"] = "parts"
    """Before voting, move each part's points of the previous frames by the change of that part's
    centroid ("parts"), so the history follows the body instead of lagging behind it; "none"
    votes with the points where they were."""

    def check(self) -> None:
        """Raise InputError naming the first setting outside its range."""
        from openhuman.errors import check_settings

        rules = [  # (key, ok, what it must be)
            ("voxel_size", self.voxel_size >= 0, ">= 0 (0 = no downsampling)"),
            ("visibility_tolerance", self.visibility_tolerance > 0, "> 0"),
            ("temporal_window", self.temporal_window >= 1, ">= 1 (1 = no 4D voting)"),
            ("mesh_samples", self.mesh_samples >= 1, ">= 1"),
            ("hull_samples", self.hull_samples >= 1, ">= 1"),
            ("depth_min", 0 <= self.depth_min < self.depth_max, ">= 0 and below depth_max"),
            ("mask_erode_px", self.mask_erode_px >= 0, ">= 0"),
            ("silhouette_max_px", self.silhouette_max_px >= 0, ">= 0 (0 = off)"),
            ("silhouette_views", self.silhouette_views >= 1, ">= 1"),
            ("outlier_neighbors", self.outlier_neighbors >= 0, ">= 0 (0 = off)"),
            ("outlier_std_ratio", self.outlier_std_ratio > 0, "> 0"),
            ("hull_voxel_size", self.hull_voxel_size > 0, "> 0"),
            ("hull_bounds", self.hull_bounds is None or (len(self.hull_bounds) == 6
             and all(a < b for a, b in zip(self.hull_bounds[:3], self.hull_bounds[3:], strict=True))),
             "[xmin, ymin, zmin, xmax, ymax, zmax] with each min below its max"),
            ("hull_mask_dilate_px", self.hull_mask_dilate_px >= 0, ">= 0"),
            ("hull_skeleton_margin", self.hull_skeleton_margin >= 0, ">= 0 (0 = off)"),
            ("hull_skeleton_pad", self.hull_skeleton_pad >= 0, ">= 0"),
            ("hull_rim_distance", self.hull_rim_distance >= 0, ">= 0 (0 = off)"),
            ("hull_skeleton_vote", self.hull_skeleton_vote >= 0, ">= 0 (0 = off)"),
            ("splat_radius_px", self.splat_radius_px >= 0, ">= 0"),
            ("occlusion_gap", self.occlusion_gap >= 0, ">= 0"),
            ("min_view_cos", 0 <= self.min_view_cos <= 1, "in [0, 1]"),
            ("fill_neighbors", self.fill_neighbors >= 0, ">= 0"),
            ("side_radius", self.side_radius >= 0, ">= 0 (0 = off)"),
            ("vote_rounds", self.vote_rounds >= 0, ">= 0 (0 = off)"),
            ("side_min_share", 0.5 <= self.side_min_share <= 1, "in [0.5, 1]"),
            ("relabel_max_px", self.relabel_max_px >= 0, ">= 0"),
            ("relabel_min_confidence", 0 <= self.relabel_min_confidence <= 1, "in [0, 1]"),
            ("relabel_behind", self.relabel_behind >= 0, ">= 0"),
            ("relabel_search_px", self.relabel_search_px >= 0, ">= 0"),
            ("relabel_fill", self.relabel_fill >= 0, ">= 0 (0 = off)"),
            ("person_match_px", self.person_match_px >= 0, ">= 0 (0 = the views' own ids)"),
            ("keypoint_min_visibility", 0 <= self.keypoint_min_visibility <= 1, "in [0, 1]"),
            ("ransac_threshold_px", self.ransac_threshold_px > 0, "> 0"),
            ("temporal_radius", self.temporal_radius > 0, "> 0"),
            ("temporal_decay", 0 < self.temporal_decay <= 1, "in (0, 1]"),
        ]  # fmt: skip
        check_settings("lifting", self, rules)


@dataclass
class ExportConfig:
    formats: list[Literal["ply", "npz", "png", "rle", "overlay", "preview"]] = field(
        default_factory=lambda: ["ply", "npz", "png", "rle", "overlay", "preview"]
    )
    """What to write."""
    query_only: bool = False
    """Also write point clouds holding only the queried part's points."""
    preview_point_px: int = 2
    """Splat half-size in pixels of each point in rendered previews."""
