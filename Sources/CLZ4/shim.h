// liblz4 from the system (Debian: liblz4-dev). Only the block API is used: LZ4_compress_default,
// LZ4_decompress_safe and LZ4_compressBound.
#include <lz4.h>
// High-compression mode: LZ4_compress_HC_extStateHC with a caller-owned state (no malloc per call).
#include <lz4hc.h>
