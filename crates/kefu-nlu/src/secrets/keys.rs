//! Private keys: raw hex (64 digits, or split into groups that add up to 64), WIF and extended
//! private keys (`xprv`…), with Base58Check verified through `sha2`.

use std::ops::Range;

use sha2::{Digest, Sha256};

use super::hints::Context;
use super::text::{INVISIBLE, Scan};
use super::{SecretKind, SecretSpan};

const XPRV_PREFIXES: &[&str] = &[
    "xprv", "yprv", "zprv", "tprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv",
];

/// Spans in FOLDED coordinates.
pub(super) fn scan_keys(scan: &Scan<'_>, ctx: &mut Context<'_, '_>, spans: &mut Vec<SecretSpan>) {
    for (range, token) in &scan.key_tokens {
        let found = if let Some(ok) = extended_private_key(token) {
            Some((SecretKind::ExtendedPrivateKey, ok))
        } else if is_hex_key_shape(token) {
            ctx.key_hint_wins(range)
                .then_some((SecretKind::PrivateKeyHex, false))
        } else if let Some(ok) = wif_shape(token) {
            (ok || ctx.has_key_hint()).then_some((SecretKind::PrivateKeyWif, ok))
        } else {
            None
        };
        if let Some((kind, checksum_ok)) = found {
            spans.push(SecretSpan {
                kind,
                range: range.clone(),
                words: 1,
                checksum_ok,
            });
        }
    }
    for range in split_hex_keys(scan.text()) {
        if ctx.key_hint_wins(&range) {
            spans.push(SecretSpan {
                kind: SecretKind::PrivateKeyHex,
                range,
                words: 1,
                checksum_ok: false,
            });
        }
    }
}

fn is_hex_key_shape(token: &str) -> bool {
    let hex = token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
        .unwrap_or(token);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs of 2+ hex groups (each 4..64 digits, the first maybe `0x`-prefixed) separated only by
/// spaces, line breaks, `-` or `:`, that add up to exactly 64 digits: a key typed or copied in
/// pieces. Candidates only: a key hint must still win (see [`Context::key_hint_wins`]).
pub(super) fn split_hex_keys(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let is_alnum = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let is_gap = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'-' | b':');
    let mut out = Vec::new();
    // (start of the run, digits so far, groups so far)
    let mut run: Option<(usize, usize, usize)> = None;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() || (i > 0 && is_alnum(i - 1)) {
            i += 1;
            continue;
        }
        // A whole token starts at i.
        let mut end = i;
        while is_alnum(end) {
            end += 1;
        }
        let token = &text[i..end];
        let digits_part = match run {
            None => token
                .strip_prefix("0x")
                .or_else(|| token.strip_prefix("0X"))
                .unwrap_or(token),
            Some(_) => token,
        };
        let hex_group = (4..64).contains(&digits_part.len())
            && digits_part.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex_group {
            run = None;
            i = end;
            continue;
        }
        let (start, digits, groups) = run.unwrap_or((i, 0, 0));
        let (digits, groups) = (digits + digits_part.len(), groups + 1);
        if digits == 64 && groups >= 2 && !is_alnum(end) {
            out.push(start..end);
            run = None;
        } else if digits < 64 {
            run = Some((start, digits, groups));
        } else {
            run = None;
        }
        // Only gap characters (or invisible ones) may follow for the run to go on.
        let mut next = end;
        while next < bytes.len() && (is_gap(bytes[next]) || text[next..].starts_with(INVISIBLE)) {
            next += if bytes[next] < 0x80 {
                1
            } else {
                INVISIBLE.len_utf8()
            };
        }
        if next == end || !is_alnum(next) {
            run = None;
        }
        i = next.max(end);
    }
    out
}

/// `Some(checksum_ok)` when `token` has the shape of a WIF key.
fn wif_shape(token: &str) -> Option<bool> {
    let b = token.as_bytes();
    let (version, compressed) = match (b.len(), b.first()?) {
        (51, b'5') => (0x80, false),
        (51, b'9') => (0xEF, false),
        (52, b'K' | b'L') => (0x80, true),
        (52, b'c') => (0xEF, true),
        _ => return None,
    };
    if !b.iter().copied().all(is_base58) {
        return None;
    }
    let ok = base58check_payload(token).is_some_and(|p| {
        p.first() == Some(&version)
            && if compressed {
                p.len() == 34 && p[33] == 0x01
            } else {
                p.len() == 33
            }
    });
    Some(ok)
}

/// `Some(checksum_ok)` when `token` looks like an extended private key.
fn extended_private_key(token: &str) -> Option<bool> {
    if !XPRV_PREFIXES.iter().any(|p| token.starts_with(p)) || !token.bytes().all(is_base58) {
        return None;
    }
    match token.len() {
        111 => Some(base58check_payload(token).is_some_and(|p| p.len() == 78)),
        50..=120 => Some(false),
        _ => None,
    }
}

fn is_base58(b: u8) -> bool {
    b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l')
}

/// Decodes Base58Check and returns the payload when the 4-byte double-SHA-256 checksum matches.
pub(super) fn base58check_payload(s: &str) -> Option<Vec<u8>> {
    let data = base58_decode(s)?;
    if data.len() < 5 {
        return None;
    }
    let (payload, check) = data.split_at(data.len() - 4);
    let hash = Sha256::digest(Sha256::digest(payload));
    (hash[..4] == *check).then(|| payload.to_vec())
}

pub(super) fn base58_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    // Big-endian base-256 accumulator.
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes() {
        let mut carry = ALPHABET.iter().position(|&a| a == c)? as u32;
        for b in bytes.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(bytes);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX64: &str = "e9873d79c6d87dc0fb6a5778633389f4453213303da61f20bd67fc233aa33262";

    #[test]
    fn base58check_decodes_known_keys() {
        let wif = "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ";
        let payload = base58check_payload(wif).unwrap_or_default();
        assert_eq!(payload.len(), 33);
        assert_eq!(payload[0], 0x80);
        assert_eq!(payload[1..3], [0x0c, 0x28]);
        assert_eq!(base58_decode("1112"), Some(vec![0, 0, 0, 1]));
        assert_eq!(base58_decode("0OIl"), None);
    }

    #[test]
    fn hex_split_into_groups_adding_up_to_64_digits_is_a_candidate() {
        let groups: Vec<&str> = HEX64
            .as_bytes()
            .chunks(16)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        for sep in [" ", "\n", "-", ": "] {
            let text = format!("key {} ok", groups.join(sep));
            let found = split_hex_keys(&text);
            assert_eq!(found.len(), 1, "{text:?}");
            assert_eq!(&text[found[0].clone()], groups.join(sep));
        }
        // A UUID, an address and a 63-digit run are not.
        assert!(split_hex_keys("2f1b6a0c-4e3a-4d2b-9a7e-0c5d3b2a1f00").is_empty());
        assert!(split_hex_keys(&format!("{} {}", &HEX64[..31], &HEX64[32..])).is_empty());
        assert!(split_hex_keys(HEX64).is_empty());
    }
}
