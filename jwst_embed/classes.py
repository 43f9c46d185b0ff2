"""The morphology classes: those the mock survey draws and the model's morphology head predicts."""

__all__ = ["MORPHOLOGY_CLASSES"]

#: Morphology classes of the mock survey, in label order.
MORPHOLOGY_CLASSES = (
    "spheroid",
    "disk",
    "bulge+disk",
    "clumpy/irregular",
    "merger",
    "point source",
)
