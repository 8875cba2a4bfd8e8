//! Key placement over several servers: CRC-32 (IEEE 802.3, the zlib/PNG checksum,
//! reflected polynomial 0xEDB88320) of the key's UTF-8 bytes, modulo the number of
//! servers. The Python (`zlib.crc32(key) % n`), TypeScript and Go dflockd clients
//! place keys the same way, so a mixed-language fleet agrees on which server owns a
//! key — as long as every client lists the servers in the same order.
//!
//! CRC-32 is a checksum, not a cryptographic hash: it is used only to spread keys.

/// The byte-at-a-time lookup table, built at compile time.
const TABLE: [u32; 256] = make_table();

const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// CRC-32 (IEEE) of `data`, as `zlib.crc32` computes it.
pub const fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    let mut i = 0;
    while i < data.len() {
        crc = (crc >> 8) ^ TABLE[((crc ^ data[i] as u32) & 0xFF) as usize];
        i += 1;
    }
    !crc
}

/// Index of the server that owns `key` among `servers` servers. `servers` of 0 is
/// treated as 1 (the caller always has at least one server).
pub fn shard_index(key: &str, servers: usize) -> usize {
    (crc32(key.as_bytes()) as usize) % servers.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"a"), 0xE8B7_BE43);
        assert_eq!(crc32(b"abc"), 0x3524_41C2);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
        // Non-ASCII keys hash their UTF-8 bytes.
        assert_eq!(crc32("é".as_bytes()), crc32(&[0xC3, 0xA9]));
    }

    #[test]
    fn placement_is_crc_modulo_count() {
        assert_eq!(shard_index("anything", 1), 0);
        assert_eq!(shard_index("123456789", 2), (0xCBF4_3926u32 % 2) as usize);
        assert_eq!(shard_index("123456789", 3), (0xCBF4_3926u32 % 3) as usize);
        assert_eq!(shard_index("", 5), 0);
        assert_eq!(shard_index("x", 0), 0);
    }
}
