// Training images from a user's own folder, so that the pretrain commands are not tied to Fashion-MNIST:
// either the IDX files of Fashion-MNIST/MNIST or one PNG folder per class (torchvision's ImageFolder layout).
#pragma once

#include <cstdint>
#include <string>

#include "data/fashion_mnist.h"

namespace draft {

/// Reads `dir/<split>/<class>/*.png`: every subfolder of `dir/<split>` is a class (sorted by name; the
/// label is the index; "_" in a folder name becomes a space in the class name used in captions), every
/// .png in it an example (sorted by file name). All images must have the same channels and size (1 for
/// grayscale, 3 for colour), values in [0, 1]. `limit` > 0 keeps the first `limit` examples in (class,
/// file) order. Throws draft::Error naming the folder or file that is missing, empty or of another shape.
ImageDataset load_image_folder(const std::string& dir, const std::string& split, int64_t limit = 0);

/// The dataset of a pretrain command's --data folder: the Fashion-MNIST IDX files when `dir` holds them
/// (train-images-idx3-ubyte[.gz] ...), else `dir/<split>/` as an image folder (load_image_folder). The
/// error for a folder that is neither describes both layouts.
ImageDataset load_training_images(const std::string& dir, const std::string& split, int64_t limit = 0);

}  // namespace draft
