//! Ticket details (`collect` in the KB): what each one is, and validation of those with a format.
//!
//! A validator takes the user's whole answer ("txid: 0xab…", "大概 100 USDT", "TRC20网络") and
//! returns the value to attach to the ticket in a canonical form, or `None` when the answer does
//! not contain one. Details without a format (time, and names the KB invents) accept any
//! non-empty answer. Nothing here guesses: a 64-hex-digit hash could be Bitcoin or TRON, so its
//! family is reported as "BTC-like/TRON", not picked.

use crate::commands::fold;

/// The details the bot knows how to ask for. Any other name in a KB's `collect` list is asked
/// for by its name and accepts any answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetailKind {
    /// Transaction hash (TxID).
    TxId,
    /// Amount, with an optional coin.
    Amount,
    /// When it happened (free text: "昨天下午三点", "2h ago").
    Time,
    /// Blockchain network (ERC20, TRC20…).
    Network,
    /// A wallet address.
    Address,
    /// The user's account UID (digits).
    Uid,
    /// A coin ticker.
    Coin,
    /// A name the bot has no question or format for.
    Other,
}

impl DetailKind {
    /// The kind behind a KB `collect` name (`tx_id`/`txid`/`tx_hash`, `amount`, …).
    pub fn of(name: &str) -> DetailKind {
        match name.to_ascii_lowercase().as_str() {
            "tx_id" | "txid" | "tx_hash" | "txhash" | "hash" => DetailKind::TxId,
            "amount" => DetailKind::Amount,
            "time" | "when" => DetailKind::Time,
            "network" | "chain" => DetailKind::Network,
            "address" | "addr" => DetailKind::Address,
            "uid" | "user_id" => DetailKind::Uid,
            "coin" | "currency" | "token" => DetailKind::Coin,
            _ => DetailKind::Other,
        }
    }
}

/// Longest answer kept for a free-text detail; longer ones are cut (staff have the transcript).
const MAX_FREE_TEXT: usize = 300;

/// Validates the answer to detail `name`, returning the canonical value to attach to the ticket.
pub fn validate(name: &str, answer: &str) -> Option<String> {
    let answer = answer.trim();
    if answer.is_empty() {
        return None;
    }
    match DetailKind::of(name) {
        DetailKind::TxId => tx_hash(answer).map(|(hash, _)| hash),
        DetailKind::Amount => amount(answer),
        DetailKind::Network => network(answer).map(str::to_owned),
        DetailKind::Address => address(answer).map(|(addr, _)| addr),
        DetailKind::Uid => uid(answer),
        DetailKind::Coin => coin(answer),
        DetailKind::Time | DetailKind::Other => Some(free_text(answer)),
    }
}

/// Keeps free text to a sane length, cutting on a char boundary.
pub fn free_text(answer: &str) -> String {
    let answer = answer.trim();
    match answer.char_indices().nth(MAX_FREE_TEXT) {
        Some((cut, _)) => format!("{}…", &answer[..cut]),
        None => answer.to_owned(),
    }
}

/// A chain family, as far as a hash or address's shape tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainFamily {
    /// Ethereum and EVM chains (BSC, Polygon, Arbitrum…): `0x` + hex.
    Evm,
    /// Bitcoin-like chains and TRON (tx hashes are 64 hex digits on both).
    BitcoinOrTron,
    /// Bitcoin (addresses).
    Bitcoin,
    /// TRON (addresses).
    Tron,
    /// Solana (base58).
    Solana,
}

/// Candidate tokens of an answer: split on whitespace and separators people put around values
/// ("txid: 0x…", "地址：T…"), with a block-explorer URL reduced to its last path segment.
fn tokens(answer: &str) -> impl Iterator<Item = &str> {
    answer
        .split(|c: char| c.is_whitespace() || matches!(c, '，' | ',' | '：' | '；' | ';' | '。'))
        .map(|t| {
            let t = t.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            // https://etherscan.io/tx/0xabc… → 0xabc…; "txid:0xabc" → 0xabc.
            t.rsplit(['/', ':', '=']).next().unwrap_or(t)
        })
        .filter(|t| !t.is_empty())
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_base58(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l'))
}

/// Finds a transaction hash in the answer: EVM `0x` + 64 hex, Bitcoin-like/TRON 64 hex, Solana
/// base58 signatures of 87–88 characters.
pub fn tx_hash(answer: &str) -> Option<(String, ChainFamily)> {
    tokens(answer).find_map(|t| {
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            (hex.len() == 64 && is_hex(hex)).then(|| (format!("0x{hex}"), ChainFamily::Evm))
        } else if t.len() == 64 && is_hex(t) {
            Some((t.to_owned(), ChainFamily::BitcoinOrTron))
        } else if (87..=88).contains(&t.len()) && is_base58(t) {
            Some((t.to_owned(), ChainFamily::Solana))
        } else {
            None
        }
    })
}

/// Finds a wallet address: EVM `0x` + 40 hex; Bitcoin legacy (`1…`/`3…`, base58, 26–35
/// characters) and bech32 (`bc1…`); TRON (`T` + 33 base58); Solana (base58, 32–44 characters).
pub fn address(answer: &str) -> Option<(String, ChainFamily)> {
    tokens(answer).find_map(|t| {
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            return (hex.len() == 40 && is_hex(hex))
                .then(|| (format!("0x{hex}"), ChainFamily::Evm));
        }
        let lower = t.to_ascii_lowercase();
        if let Some(data) = lower.strip_prefix("bc1") {
            // The bech32 alphabet: digits and lowercase letters except 1, b, i, o.
            let bech32 = data.bytes().all(|b| {
                (b.is_ascii_digit() && b != b'1')
                    || (b.is_ascii_lowercase() && !matches!(b, b'b' | b'i' | b'o'))
            });
            let one_case = t == lower || t == t.to_ascii_uppercase();
            return ((11..=71).contains(&data.len()) && bech32 && one_case)
                .then(|| (lower.clone(), ChainFamily::Bitcoin));
        }
        if !is_base58(t) {
            return None;
        }
        if t.starts_with('T') && t.len() == 34 {
            Some((t.to_owned(), ChainFamily::Tron))
        } else if (t.starts_with('1') || t.starts_with('3')) && (26..=35).contains(&t.len()) {
            Some((t.to_owned(), ChainFamily::Bitcoin))
        } else if (32..=44).contains(&t.len()) {
            Some((t.to_owned(), ChainFamily::Solana))
        } else {
            None
        }
    })
}

/// Networks: canonical name and the spellings users write (compared without spaces, `-`, `_`).
const NETWORKS: &[(&str, &[&str])] = &[
    (
        "ERC20 (Ethereum)",
        &["erc20", "eth", "ethereum", "以太坊", "以太", "以太坊网络"],
    ),
    ("TRC20 (TRON)", &["trc20", "tron", "trx", "波场", "波场链"]),
    (
        "BEP20 (BSC)",
        &[
            "bep20",
            "bsc",
            "bnb smart chain",
            "bnbchain",
            "币安智能链",
            "币安链",
            "bnb",
        ],
    ),
    ("Bitcoin", &["btc", "bitcoin", "比特币", "比特币网络"]),
    ("Solana", &["sol", "solana", "索拉纳"]),
    ("Polygon", &["polygon", "matic", "pol", "马蹄"]),
    ("Arbitrum One", &["arbitrum", "arb", "arbitrumone"]),
    ("Optimism", &["optimism", "op"]),
    ("Base", &["base"]),
    (
        "Avalanche C-Chain",
        &["avalanche", "avax", "avaxc", "cchain", "雪崩"],
    ),
    ("TON", &["ton"]),
    ("Litecoin", &["ltc", "litecoin", "莱特币"]),
    ("Dogecoin", &["doge", "dogecoin", "狗狗币"]),
    ("XRP Ledger", &["xrp", "ripple", "瑞波"]),
    ("Omni", &["omni"]),
];

fn compact(s: &str) -> String {
    fold(s)
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '_' | '(' | ')' | '（' | '）'))
        .collect()
}

/// Recognises a network name ("TRC20", "trc-20", "波场", "USDT-TRC20", "ERC20网络").
pub fn network(answer: &str) -> Option<&'static str> {
    let c = compact(answer);
    // "erc20网络", "tron chain": the word "network" is not part of the name.
    let bare = c
        .trim_end_matches("网络")
        .trim_end_matches("network")
        .trim_end_matches("chain");
    if let Some((name, _)) = NETWORKS.iter().find(|(_, aliases)| {
        aliases
            .iter()
            .any(|a| compact(a) == c || compact(a) == bare)
    }) {
        return Some(name);
    }
    // Inside a longer answer only distinctive spellings count ("op" or "base" inside another word
    // would match by accident).
    NETWORKS
        .iter()
        .find(|(_, aliases)| {
            aliases.iter().any(|a| {
                let a = compact(a);
                (a.chars().count() >= 5 || !a.is_ascii()) && c.contains(&a)
            })
        })
        .map(|(name, _)| *name)
}

/// Chinese coin names and slang, mapped to tickers.
const COIN_NAMES: &[(&str, &str)] = &[
    ("泰达币", "USDT"),
    ("u", "USDT"),
    ("比特币", "BTC"),
    ("以太坊", "ETH"),
    ("以太币", "ETH"),
    ("瑞波币", "XRP"),
    ("狗狗币", "DOGE"),
    ("莱特币", "LTC"),
    ("波场", "TRX"),
];

fn ticker(s: &str) -> Option<String> {
    let s = s.trim();
    if let Some((_, t)) = COIN_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Some((*t).to_owned());
    }
    let ok = (2..=10).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| s.to_ascii_uppercase())
}

/// Recognises a coin ticker or a common Chinese coin name.
pub fn coin(answer: &str) -> Option<String> {
    ticker(&fold(answer))
}

/// Recognises an amount: a positive number with optional thousands separators and decimals, and
/// an optional coin before or after it ("100 USDT", "0.5btc", "1,000", "USDT 100", "100个u").
/// Returns it as "1000 USDT" (separators dropped, ticker upper-cased).
pub fn amount(answer: &str) -> Option<String> {
    let s = fold(answer);
    let s = s.trim();
    let s = s
        .trim_start_matches(['约', '大', '概', '差', '不', '多', '~', '≈'])
        .trim_start_matches("about")
        .trim_start_matches("around")
        .trim();
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let end = s[start..]
        .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '.'))
        .map_or(s.len(), |i| start + i);
    let number = parse_number(&s[start..end])?;
    let before = s[..start].trim();
    let after = s[end..]
        .trim()
        .trim_start_matches(['个', '枚'])
        .trim_end_matches(['左', '右', '。', '.'])
        .trim();
    let coin = match (before.is_empty(), after.is_empty()) {
        (true, true) => None,
        (false, true) => Some(ticker(before)?),
        (true, false) => Some(ticker(after)?),
        (false, false) => return None,
    };
    Some(match coin {
        Some(c) => format!("{number} {c}"),
        None => number,
    })
}

/// "1,000.50" → "1000.50"; rejects zero, misplaced separators ("1,00") and several points.
fn parse_number(s: &str) -> Option<String> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let groups: Vec<&str> = int.split(',').collect();
    let grouped_ok = groups.len() == 1
        || (!groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3));
    if int.is_empty() || !grouped_ok {
        return None;
    }
    let digits: String = groups.concat();
    let number = match frac {
        Some(f) => format!("{digits}.{f}"),
        None => digits,
    };
    let positive = number.bytes().any(|b| (b'1'..=b'9').contains(&b));
    positive.then_some(number)
}

/// Recognises a UID: 5–20 digits, optionally labelled ("UID: 12345678").
pub fn uid(answer: &str) -> Option<String> {
    let s = fold(answer).to_ascii_lowercase();
    let s = s
        .trim()
        .trim_start_matches("uid")
        .trim_start_matches([':', '：', '#', ' ']);
    let s = s.trim();
    ((5..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVM_TX: &str = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";
    const HEX_TX: &str = "a1075db55d416d3ca199f55b6084e2115b9345e16c5cf302fc80e9d5fbf5d48d";
    const SOL_TX: &str =
        "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW";

    #[test]
    fn an_evm_tx_hash_is_accepted_with_or_without_a_label() {
        assert_eq!(validate("tx_id", EVM_TX).as_deref(), Some(EVM_TX));
        assert_eq!(
            validate("tx_id", &format!("txid: {EVM_TX}")).as_deref(),
            Some(EVM_TX)
        );
        assert_eq!(tx_hash(EVM_TX).unwrap().1, ChainFamily::Evm);
    }

    #[test]
    fn a_block_explorer_link_yields_its_tx_hash() {
        let url = format!("https://etherscan.io/tx/{EVM_TX}");
        assert_eq!(validate("tx_id", &url).as_deref(), Some(EVM_TX));
    }

    #[test]
    fn bitcoin_tron_and_solana_hashes_are_recognised_by_shape() {
        assert_eq!(
            tx_hash(HEX_TX).unwrap(),
            (HEX_TX.to_owned(), ChainFamily::BitcoinOrTron)
        );
        assert_eq!(tx_hash(SOL_TX).unwrap().1, ChainFamily::Solana);
    }

    #[test]
    fn a_truncated_or_non_hex_hash_is_rejected() {
        assert_eq!(validate("tx_id", &EVM_TX[..60]), None);
        assert_eq!(validate("tx_id", &HEX_TX.replace('a', "g")), None);
        assert_eq!(validate("tx_id", "我不知道哈希在哪"), None);
        assert_eq!(validate("tx_id", "[redacted: private key]"), None);
    }

    #[test]
    fn amounts_take_coins_separators_and_full_width_digits() {
        assert_eq!(validate("amount", "100 USDT").as_deref(), Some("100 USDT"));
        assert_eq!(validate("amount", "0.5btc").as_deref(), Some("0.5 BTC"));
        assert_eq!(validate("amount", "1,000").as_deref(), Some("1000"));
        assert_eq!(
            validate("amount", "ＵＳＤＴ　２００").as_deref(),
            Some("200 USDT")
        );
        assert_eq!(validate("amount", "大概500u").as_deref(), Some("500 USDT"));
        assert_eq!(validate("amount", "3个eth").as_deref(), Some("3 ETH"));
    }

    #[test]
    fn amounts_without_a_positive_number_are_rejected() {
        assert_eq!(validate("amount", "很多"), None);
        assert_eq!(validate("amount", "0"), None);
        assert_eq!(validate("amount", "1,00"), None);
        assert_eq!(validate("amount", "1.2.3"), None);
        assert_eq!(validate("amount", "100 is what I sent"), None);
    }

    #[test]
    fn addresses_are_recognised_per_chain_family() {
        let evm = "0x52908400098527886E0F7030069857D2E4169EE7";
        assert_eq!(address(evm).unwrap().1, ChainFamily::Evm);
        let tron = "TJCnKsPa7y5okkXvQAidZBzqx3QyQ6sxMW";
        assert_eq!(address(tron).unwrap().1, ChainFamily::Tron);
        let legacy = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2";
        assert_eq!(address(legacy).unwrap().1, ChainFamily::Bitcoin);
        let bech32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
        assert_eq!(address(bech32).unwrap().1, ChainFamily::Bitcoin);
        let sol = "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV";
        assert_eq!(address(sol).unwrap().1, ChainFamily::Solana);
        assert_eq!(
            validate("address", &format!("地址：{tron}")).as_deref(),
            Some(tron)
        );
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        assert_eq!(
            validate("address", "0x52908400098527886E0F7030069857D2E4169E"),
            None
        );
        assert_eq!(
            validate("address", "TJCnKsPa7y5okkXvQAidZBzqx3QyQ6sxM0"),
            None
        );
        assert_eq!(
            validate("address", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdB"),
            None
        );
        assert_eq!(validate("address", "my wallet"), None);
    }

    #[test]
    fn networks_match_names_spellings_and_chinese() {
        assert_eq!(network("TRC20"), Some("TRC20 (TRON)"));
        assert_eq!(network("trc-20"), Some("TRC20 (TRON)"));
        assert_eq!(network("USDT-TRC20"), Some("TRC20 (TRON)"));
        assert_eq!(network("波场"), Some("TRC20 (TRON)"));
        assert_eq!(network("erc20网络"), Some("ERC20 (Ethereum)"));
        assert_eq!(network("BSC"), Some("BEP20 (BSC)"));
        assert_eq!(network("币安智能链"), Some("BEP20 (BSC)"));
        assert_eq!(network("Solana"), Some("Solana"));
        assert_eq!(network("base"), Some("Base"));
    }

    #[test]
    fn unknown_networks_and_short_words_inside_text_are_rejected() {
        assert_eq!(network("不知道"), None);
        assert_eq!(network("database"), None);
        assert_eq!(network("stop"), None);
    }

    #[test]
    fn a_uid_is_digits_with_an_optional_label() {
        assert_eq!(validate("uid", "12345678").as_deref(), Some("12345678"));
        assert_eq!(
            validate("uid", "UID: 12345678").as_deref(),
            Some("12345678")
        );
        assert_eq!(
            validate("uid", "１２３４５６７８").as_deref(),
            Some("12345678")
        );
        assert_eq!(validate("uid", "1234"), None);
        assert_eq!(validate("uid", "abc12345"), None);
    }

    #[test]
    fn coins_are_tickers_or_chinese_names() {
        assert_eq!(validate("coin", "usdt").as_deref(), Some("USDT"));
        assert_eq!(validate("coin", "比特币").as_deref(), Some("BTC"));
        assert_eq!(validate("coin", "???"), None);
    }

    #[test]
    fn time_and_unknown_details_accept_any_non_empty_text() {
        assert_eq!(
            validate("time", "昨天下午3点").as_deref(),
            Some("昨天下午3点")
        );
        assert_eq!(validate("order_id", "A-77").as_deref(), Some("A-77"));
        assert_eq!(validate("time", "   "), None);
        let long = "很".repeat(400);
        assert_eq!(
            validate("time", &long).unwrap().chars().count(),
            MAX_FREE_TEXT + 1
        );
    }

    #[test]
    fn detail_kinds_accept_common_spellings_of_their_names() {
        assert_eq!(DetailKind::of("tx_id"), DetailKind::TxId);
        assert_eq!(DetailKind::of("TxHash"), DetailKind::TxId);
        assert_eq!(DetailKind::of("order_id"), DetailKind::Other);
    }
}
