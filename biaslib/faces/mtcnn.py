"""MTCNN face detection (Zhang et al. 2016) with facenet-pytorch's P/R/O-Net weights, batched.

The three networks are rebuilt here with the layer names of facenet-pytorch's state dicts
(``data/pnet.pt``, ``rnet.pt``, ``onet.pt`` from its 2.6.0 wheel, found by
:func:`biaslib.faces._bundled.bundled_file` and read with ``weights_only=True``); the package
itself is never imported, because its metadata pins torch < 2.3 and numpy < 2.

The cascade, written for batches: images of equal size are stacked; P-Net runs over an image
pyramid (scale 12 / ``min_face_size``, then × ``factor`` while the short side stays ≥ 12 px);
candidates of every image go through R-Net and O-Net together, cut out and resized by
``torchvision.ops.roi_align`` (pixels outside the image are black, as in the original cascade).
NMS is per image: IoU 0.5 within a scale, 0.7 after P-Net and R-Net, and 0.7 on
intersection-over-minimum after O-Net. Pixel values are normalised as ``(x − 127.5) / 128``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.ops import batched_nms, roi_align

from biaslib.faces._bundled import bundled_file
from biaslib.faces._images import ImageLike, as_rgb_list


class _PNet(nn.Module):
    """Proposal net, fully convolutional: ``(N, 3, H, W)`` → regression ``(N, 4, h, w)``, face prob ``(N, h, w)``."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class _RNet(nn.Module):
    """Refine net: ``(K, 3, 24, 24)`` crops → regression ``(K, 4)``, face prob ``(K,)``."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))  # weights were trained on (W, H, C) order
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class _ONet(nn.Module):
    """Output net: ``(K, 3, 48, 48)`` crops → regression ``(K, 4)``, face prob ``(K,)`` (landmarks unused)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).flatten(1)))
        return self.dense6_2(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


def _load(net: nn.Module, filename: str) -> nn.Module:
    """``net`` with facenet-pytorch's bundled ``data/<filename>`` state dict, in eval mode."""
    state = torch.load(bundled_file("facenet_pytorch", f"data/{filename}"), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.eval()


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """Pixel values 0..255 → MTCNN's input range."""
    return (x - 127.5) * (1.0 / 128.0)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Shift box corners ``(K, 4)`` by ``reg`` ``(K, 4)`` in units of the box's width/height."""
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + reg * size


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Squares ``(K, 4)`` with the same centres and side = the longer side."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(dim=1, keepdim=True).values / 2
    return torch.cat([centre - half, centre + half], dim=1)


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS on intersection over the smaller area; indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        wh = np.clip(np.minimum(boxes[i, 2:], boxes[rest, 2:]) - np.maximum(boxes[i, :2], boxes[rest, :2]), 0, None)
        overlap = wh.prod(axis=1) / np.maximum(np.minimum(area[i], area[rest]), 1e-9)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)


class MTCNNDetector:
    """The MTCNN cascade over batches of images (see the module docstring).

    ``min_face_size`` (px) sets the first pyramid scale; ``thresholds`` are the P/R/O-Net face
    probabilities a candidate needs; ``factor`` is the pyramid step.
    """

    name = "mtcnn"

    def __init__(self, min_face_size: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7), factor: float = 0.709,
                 device: str | torch.device = "cpu"):
        self.min_face_size, self.thresholds, self.factor = min_face_size, tuple(thresholds), factor
        self.device = torch.device(device)
        self.pnet = _load(_PNet(), "pnet.pt").to(self.device)
        self.rnet = _load(_RNet(), "rnet.pt").to(self.device)
        self.onet = _load(_ONet(), "onet.pt").to(self.device)

    def _scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales for an image of this size."""
        scale, short, scales = 12.0 / self.min_face_size, min(height, width), []
        while short * scale >= 12:
            scales.append(scale)
            scale *= self.factor
        return scales

    def _propose(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """P-Net stage on ``(N, 3, H, W)`` pixels: boxes ``(K, 4)``, scores ``(K,)``, image index ``(K,)``."""
        height, width = x.shape[2:]
        found = []
        for scale in self._scales(height, width):
            h, w = math.ceil(height * scale), math.ceil(width * scale)
            reg, prob = self.pnet(_normalise(F.interpolate(x, size=(h, w), mode="area")))
            image, row, col = torch.nonzero(prob >= self.thresholds[0], as_tuple=True)
            cells = torch.stack([col, row, col, row], dim=1).float() * 2 + torch.tensor([0.0, 0.0, 12.0, 12.0])
            boxes = cells / torch.tensor([w / width, h / height] * 2)
            scores, offsets = prob[image, row, col], reg[image, :, row, col]
            keep = batched_nms(boxes, scores, image, 0.5)
            found.append((_regress(boxes[keep], offsets[keep]), scores[keep], image[keep]))
        boxes, scores, image = (torch.cat(parts) for parts in zip(*found)) if found else (
            torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
        keep = batched_nms(boxes, scores, image, 0.7)
        return _square(boxes[keep]), scores[keep], image[keep]

    def _refine(self, net: nn.Module, x: torch.Tensor, boxes: torch.Tensor, image: torch.Tensor, size: int,
                threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """R-Net or O-Net stage: crops of ``boxes`` at ``size`` px, kept and regressed where prob ≥ threshold."""
        if len(boxes) == 0:
            return boxes, torch.zeros(0), image
        rois = torch.cat([image[:, None].float(), boxes], dim=1)
        crops = roi_align(x, rois, output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
        reg, prob = net(_normalise(crops))
        keep = prob >= threshold
        return _regress(boxes[keep], reg[keep]), prob[keep], image[keep]

    @torch.inference_mode()
    def _detect_stack(self, batch: np.ndarray) -> list[np.ndarray]:
        """Boxes per image for a stack ``(N, H, W, 3)`` of equal-size uint8 images."""
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
        boxes, _, image = self._propose(x)
        boxes, scores, image = self._refine(self.rnet, x, boxes, image, 24, self.thresholds[1])
        keep = batched_nms(boxes, scores, image, 0.7)
        boxes, scores, image = self._refine(self.onet, x, _square(boxes[keep]), image[keep], 48, self.thresholds[2])
        height, width = batch.shape[1:3]
        limits = np.array([width, height, width, height], np.float32)
        out = []
        for i in range(len(batch)):
            mine = (image == i).cpu().numpy()
            b, s = boxes.cpu().numpy()[mine], scores.cpu().numpy()[mine]
            kept = _nms_min(b, s, 0.7) if len(b) else np.zeros(0, np.int64)
            clipped = np.clip(b[kept], 0, limits)
            out.append(np.column_stack([clipped, s[kept]]).astype(np.float32).reshape(-1, 5))
        return out

    def detect(self, images: Sequence[ImageLike]) -> list[np.ndarray]:
        """Boxes ``(k_i, 5)`` per image; images of equal size are processed as one batch."""
        arrays = as_rgb_list(images)
        out: list[np.ndarray | None] = [None] * len(arrays)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, arr in enumerate(arrays):
            groups.setdefault(arr.shape, []).append(i)
        for members in groups.values():
            for i, boxes in zip(members, self._detect_stack(np.stack([arrays[i] for i in members]))):
                out[i] = boxes
        return out
