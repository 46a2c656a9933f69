//! Loading and validating suite files. (in progress)
