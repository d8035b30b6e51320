"""Import ROIs from files (suite2p, Cellpose, ImageJ, neurofinder, label images, our .npz) and
save a Labels layer's ROIs to them."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, FileEdit

from ...errors import NapariCalciumError
from ...io.roi_files import ROI_FORMATS, load_rois, save_rois
from .._rois import rois_from_labels_layer, rois_labels_kwargs
from .rois import _LayerPickers, _layers_of

AUTO = "from the file name"


class ImportRoisWidget(_LayerPickers):
    """Read a ROI file onto an image's pixel grid and add it as a Labels layer."""

    title = "import ROIs"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.path = FileEdit(label="ROI file or suite2p folder", mode="r")
        self.image_box = ComboBox(label="on image", choices=self._images)
        self.trust = CheckBox(text="trust pickled files (suite2p stat.npy, Cellpose _seg.npy)")
        super().__init__(napari_viewer, [self.image_box], [self.path, self.trust],
                         run_text="Import")  # fmt: skip

    def _images(self, _w=None):
        return [(layer.name, layer) for layer in _layers_of(self.viewer, "image")]

    def start(self):
        self.last_layers = []
        image = self.image_box.value
        path = Path(self.path.value)
        shape = None if image is None else tuple(image.data.shape[-2:])
        try:
            rois = load_rois(path, shape=shape, allow_pickle=bool(self.trust.value))
            if shape is not None and tuple(rois.shape) != shape:
                raise NapariCalciumError(
                    f"{path.name} holds ROIs over a {rois.shape} image, but {image.name!r} "
                    f"is {shape}"
                )
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        data, kwargs = rois_labels_kwargs(rois, name=f"{path.stem} ROIs", reference=image)
        self._add(data, kwargs, "labels")
        self.status.value = f"{len(rois)} ROI(s) from {path.name} → {self.last_layers[-1].name}"
        return None


class SaveRoisWidget(_LayerPickers):
    """Save the ROIs of a Labels layer (painting included) to a file."""

    title = "save ROIs"

    def __init__(self, napari_viewer=None) -> None:
        self.viewer = napari_viewer
        self.labels_box = ComboBox(label="ROIs", choices=self._labels)
        self.path = FileEdit(label="save as", mode="w")
        self.format = ComboBox(label="format", choices=[AUTO, *ROI_FORMATS], value=AUTO)
        self.overwrite = CheckBox(text="overwrite an existing file", value=False)
        super().__init__(napari_viewer, [self.labels_box],
                         [self.path, self.format, self.overwrite], run_text="Save")  # fmt: skip

    def _labels(self, _w=None):
        return [(layer.name, layer) for layer in _layers_of(self.viewer, "labels", ndim=2)]

    def start(self):
        layer = self.labels_box.value
        if layer is None:
            self.status.value = "choose a Labels layer of ROIs"
            return None
        fmt = None if self.format.value == AUTO else self.format.value
        try:
            rois = rois_from_labels_layer(layer)
            written = save_rois(
                rois, Path(self.path.value), format=fmt, overwrite=bool(self.overwrite.value)
            )
        except NapariCalciumError as exc:
            self.status.value = f"error: {exc}"
            return None
        self.status.value = f"saved {len(rois)} ROI(s) to {written}"
        return None
