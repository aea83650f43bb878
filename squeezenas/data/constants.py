"""Constants every dataset, transform and picture shares."""

IGNORE_INDEX = 255  # the one ignore label every dataset hands out, whatever its files use
MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics: what the released networks were trained with
STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")  # files taken as images in a folder
