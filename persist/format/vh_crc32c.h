/*
 * vh_crc32c.h - CRC-32C (Castagnoli), the checksum of every stored value.
 *
 * Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value and final xor
 * 0xFFFFFFFF: the same CRC as iSCSI, ext4 metadata and RocksDB's block
 * checksums. Check value: vh_crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef VH_CRC32C_H
#define VH_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (the result of an earlier call, or 0 to start) with `len`
 * bytes at `buf` [borrowed] and returns the new CRC. Chaining calls over
 * consecutive pieces gives the CRC of the whole: vh_crc32c(vh_crc32c(0, a,
 * n), b, m) == CRC of a followed by b. Thread-safe, no allocation. */
uint32_t vh_crc32c(uint32_t crc, const void *buf, size_t len);

/* Tests only: non-zero makes vh_crc32c take the table path even where the
 * CPU's CRC32 instruction is used (crc32c.c), so both can be compared. */
extern int vh_crc32c__no_hw;

#endif
