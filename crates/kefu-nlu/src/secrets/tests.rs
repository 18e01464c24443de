//! Tests of the whole detector through [`find_secrets`] and [`redact`]; each submodule tests its
//! own parts.

use bip39::{Language, Mnemonic};

use super::*;

const ABANDON_12: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
const LEGAL_12: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";
const WIF_UNCOMPRESSED: &str = "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ";
const WIF_COMPRESSED: &str = "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617";
/// BIP32 test vector 1, master key (chain m).
const XPRV: &str = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
/// The same key with a corrupted tail (112 chars): right prefix and alphabet, wrong checksum.
const XPRV_MISTYPED: &str = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LN8hWzJ8zxbHeE9UgfR7Lqw2mYB3XUWHFmf";
const XPUB: &str = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
const HEX64: &str = "e9873d79c6d87dc0fb6a5778633389f4453213303da61f20bd67fc233aa33262";

fn mnemonic(lang: Language, entropy: &[u8]) -> String {
    match Mnemonic::from_entropy_in(lang, entropy) {
        Ok(m) => m.to_string(),
        Err(e) => panic!("bad test entropy: {e}"),
    }
}

fn one(text: &str) -> SecretSpan {
    let spans = find_secrets(text);
    assert_eq!(
        spans.len(),
        1,
        "expected exactly one span in {text:?}, got {spans:?}"
    );
    spans[0].clone()
}

fn covered<'a>(text: &'a str, span: &SecretSpan) -> &'a str {
    &text[span.range.clone()]
}

fn assert_none(text: &str) {
    let spans = find_secrets(text);
    assert!(spans.is_empty(), "false positive in {text:?}: {spans:?}");
}

fn is_valid_english(words: &str) -> bool {
    Mnemonic::parse_in_normalized(Language::English, words).is_ok()
}

// ----- English mnemonics -----

#[test]
fn a_valid_12_word_english_mnemonic_is_found_with_its_checksum() {
    let s = one(ABANDON_12);
    assert_eq!(s.kind, SecretKind::SeedPhrase);
    assert_eq!(s.range, 0..ABANDON_12.len());
    assert_eq!(s.words, 12);
    assert!(s.checksum_ok);
}

#[test]
fn a_valid_24_word_mnemonic_generated_from_entropy_is_found() {
    let m = mnemonic(Language::English, &[0x5a; 32]);
    let text = format!("hi, {m}");
    let s = one(&text);
    assert_eq!(covered(&text, &s), m);
    assert_eq!((s.words, s.checksum_ok), (24, true));
}

#[test]
fn every_valid_length_from_entropy_is_found() {
    for (len, bytes) in [(12, 16), (15, 20), (18, 24), (21, 28), (24, 32)] {
        for seed in 0u8..4 {
            let entropy: Vec<u8> = (0..bytes)
                .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
                .collect();
            let m = mnemonic(Language::English, &entropy);
            let s = one(&m);
            assert_eq!((s.words, s.checksum_ok), (len, true), "{m}");
        }
    }
}

#[test]
fn numbered_mnemonics_are_found_and_the_span_includes_inner_numbering() {
    let words: Vec<&str> = LEGAL_12.split(' ').collect();
    let dotted: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{}. {w} ", i + 1))
        .collect();
    let s = one(&dotted);
    assert_eq!((s.words, s.checksum_ok), (12, true));
    assert_eq!(
        covered(&dotted, &s),
        dotted.trim_end().trim_start_matches("1. ")
    );
    let paren: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{})\t{w}\n", i + 1))
        .collect();
    assert!(one(&paren).checksum_ok);
    let tight: String = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{}){w} ", i + 1))
        .collect();
    assert!(one(&tight).checksum_ok);
}

#[test]
fn comma_separated_mnemonics_are_found() {
    let text = format!("words: {}.", LEGAL_12.replace(' ', ", "));
    let s = one(&text);
    assert_eq!(covered(&text, &s), LEGAL_12.replace(' ', ", "));
    assert!(s.checksum_ok);
    let chinese_commas = LEGAL_12.replace(' ', "，");
    assert!(one(&chinese_commas).checksum_ok);
}

#[test]
fn a_mnemonic_embedded_in_a_sentence_is_found_without_the_surrounding_words() {
    let text = format!("my seed is {LEGAL_12} please help");
    let s = one(&text);
    assert_eq!(covered(&text, &s), LEGAL_12);
    assert_eq!((s.words, s.checksum_ok), (12, true));
    // "please" and "help" are wordlist words, but a verified window may leave two words over.
    assert_eq!(
        redact(&text, &[s]),
        "my seed is [redacted: seed phrase, 12 words] please help"
    );
}

#[test]
fn a_mnemonic_followed_by_please_help_is_found_even_without_a_hint() {
    let text = format!("{ABANDON_12} please help");
    assert_eq!(covered(&text, &one(&text)), ABANDON_12);
}

#[test]
fn upper_case_and_full_width_mnemonics_are_found() {
    let upper = LEGAL_12.to_uppercase();
    assert!(one(&upper).checksum_ok);
    let title: String = LEGAL_12
        .split(' ')
        .map(|w| format!("{}{} ", w[..1].to_uppercase(), &w[1..]))
        .collect();
    assert!(one(&title).checksum_ok);
    let full_width: String = ABANDON_12
        .chars()
        .map(|c| {
            if c == ' ' {
                '\u{3000}'
            } else {
                char::from_u32(c as u32 - 0x61 + 0xFF41).unwrap_or(c)
            }
        })
        .collect();
    let text = format!("助记词：{full_width}");
    let s = one(&text);
    assert_eq!(covered(&text, &s), full_width);
    assert!(s.checksum_ok);
}

#[test]
fn one_word_per_line_is_found() {
    let text = format!("here you go\n{}\n", LEGAL_12.replace(' ', "\n"));
    let s = one(&text);
    assert_eq!(s.words, 12);
    assert!(s.checksum_ok);
}

#[test]
fn a_numbered_mnemonic_with_a_wrong_word_is_still_flagged_without_checksum() {
    let broken = ABANDON_12.replace("about", "zoo");
    assert!(!is_valid_english(&broken));
    let numbered: String = broken
        .split(' ')
        .enumerate()
        .map(|(i, w)| format!("{}. {w}\n", i + 1))
        .collect();
    let s = one(&numbered);
    assert_eq!((s.words, s.checksum_ok), (12, false));
}

#[test]
fn a_12_word_run_with_a_bad_checksum_is_flagged_when_the_message_mentions_a_seed() {
    let broken = LEGAL_12.replace("yellow", "zoo");
    assert!(!is_valid_english(&broken));
    let text = format!("is this recovery phrase ok? {broken}");
    let s = one(&text);
    assert!(!s.checksum_ok);
    assert!(covered(&text, &s).ends_with(&broken));
    let zh = format!("我的助记词：{broken}");
    assert_eq!(covered(&zh, &one(&zh)), broken);
}

#[test]
fn partial_seed_phrases_are_flagged_only_when_seed_like() {
    let eleven: Vec<&str> = LEGAL_12.split(' ').take(11).collect();
    let numbered: String = eleven
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{}. {w}\n", i + 1))
        .collect();
    // 11 numbered words with a hint: flagged.
    let hinted = format!("seed phrase (I lost the last word):\n{numbered}");
    assert!(
        find_secrets(&hinted)
            .iter()
            .any(|s| s.words >= 11 && !s.checksum_ok)
    );
    // 11 plain words without a hint: not flagged.
    assert_none(&eleven.join(" "));
    // 11 or 10 plain words after a hint: flagged (the rest can be tried), in either language.
    for text in [
        format!(
            "my seed phrase is {} but the last word is lost",
            eleven.join(" ")
        ),
        format!("助记词少了两个 {} 还能找回吗", eleven[..10].join(" ")),
    ] {
        let span = one(&text);
        assert!(!span.checksum_ok, "{text}");
        assert!(
            covered(&text, &span).starts_with("legal") && !redact(&text, &[span]).contains("wave"),
            "{text}"
        );
    }
    // Nine are not.
    assert_none(&format!("my seed phrase is {}", eleven[..9].join(" ")));
    // 13 numbered words: the whole run.
    let thirteen = format!("{ABANDON_12} zoo");
    let numbered13: String = thirteen
        .split(' ')
        .enumerate()
        .map(|(i, w)| format!("{}. {w} ", i + 1))
        .collect();
    let s = one(&numbered13);
    assert!(s.words >= 12);
    assert!(!redact(&numbered13, &[s]).contains("abandon"));
}

#[test]
fn a_run_of_more_than_24_words_is_flagged_whole_when_seed_like() {
    let long = format!(
        "{} {}",
        mnemonic(Language::English, &[7; 32]),
        "zoo zoo zoo"
    );
    let text = format!("backup: {long}");
    let s = one(&text);
    assert_eq!(covered(&text, &s), long);
    assert_eq!(s.words, 27);
}

#[test]
fn two_mnemonics_on_two_lines_are_both_found() {
    let a = mnemonic(Language::English, &[1; 16]);
    let b = mnemonic(Language::English, &[2; 16]);
    let text = format!("{a}\n{b}");
    let spans = find_secrets(&text);
    let joined = format!("{a} {b}");
    if is_valid_english(&joined) {
        return; // astronomically unlikely; the whole run would then be one 24-word mnemonic
    }
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(covered(&text, &spans[0]), a);
    assert_eq!(covered(&text, &spans[1]), b);
    assert!(spans.iter().all(|s| s.checksum_ok));
}

// ----- Chinese mnemonics -----

#[test]
fn a_separated_simplified_chinese_mnemonic_is_found() {
    let m = mnemonic(Language::SimplifiedChinese, &[0x11; 16]);
    let text = format!("帮我看看这个 {m} 谢谢");
    let s = one(&text);
    assert_eq!(covered(&text, &s), m);
    assert_eq!((s.words, s.checksum_ok), (12, true));
}

#[test]
fn a_separated_traditional_chinese_mnemonic_is_found() {
    let m = mnemonic(Language::TraditionalChinese, &[0x93; 32]);
    let s = one(&m);
    assert_eq!((s.words, s.checksum_ok), (24, true));
}

#[test]
fn numbered_and_comma_separated_chinese_characters_are_found() {
    let m = mnemonic(Language::SimplifiedChinese, &[0x42; 16]);
    let numbered: String = m
        .split(' ')
        .enumerate()
        .map(|(i, w)| format!("{}.{w} ", i + 1))
        .collect();
    assert!(one(&numbered).checksum_ok);
    let commas = m.replace(' ', "，");
    assert!(one(&commas).checksum_ok);
    // Separated single characters are seed-like even with a bad checksum.
    assert!(
        !one("的 一 是 在 不 了 有 和 人 这 中 大").checksum_ok
            || is_valid_zh("的一是在不了有和人这中大")
    );
}

fn is_valid_zh(contiguous: &str) -> bool {
    let spaced: Vec<String> = contiguous.chars().map(String::from).collect();
    Mnemonic::parse_in_normalized(Language::SimplifiedChinese, &spaced.join(" ")).is_ok()
}

#[test]
fn a_contiguous_chinese_mnemonic_is_found_with_a_hint() {
    let m = mnemonic(Language::SimplifiedChinese, &[0x3c; 16]).replace(' ', "");
    for text in [
        format!("我的助记词：{m}"),
        format!("我的助记词是{m}"),
        format!("助记词如下{m}，还能找回吗"),
    ] {
        let s = one(&text);
        assert_eq!(covered(&text, &s), m, "{text}");
        assert_eq!((s.words, s.checksum_ok), (12, true));
    }
}

#[test]
fn a_contiguous_chinese_mnemonic_alone_in_a_message_is_found() {
    let m = mnemonic(Language::SimplifiedChinese, &[0x77; 20]).replace(' ', "");
    let text = format!(" {m}。\n");
    assert_eq!(covered(&text, &one(&text)), m);
}

#[test]
fn a_chinese_mnemonic_written_in_groups_is_found() {
    for (lang, entropy) in [
        (Language::SimplifiedChinese, [0x5a; 16]),
        (Language::TraditionalChinese, [0xa3; 16]),
    ] {
        let chars: Vec<String> = mnemonic(lang, &entropy)
            .split(' ')
            .map(str::to_owned)
            .collect();
        let group = |n: usize, sep: &str| {
            chars
                .chunks(n)
                .map(|c| c.concat())
                .collect::<Vec<_>>()
                .join(sep)
        };
        for text in [
            group(4, " "),
            group(6, "\n"),
            group(3, "  "),
            format!("我的助记词：{} 对吗", group(4, " ")),
            format!("卡片背面写着{}", group(4, " ")),
        ] {
            let s = one(&text);
            assert!(s.checksum_ok, "{text}");
            let found: String = covered(&text, &s)
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            assert_eq!(found, chars.concat(), "{text}");
        }
    }
}

// ----- Keys -----

#[test]
fn a_hex_key_with_a_private_key_hint_is_found() {
    let text = format!("private key: {HEX64}");
    let s = one(&text);
    assert_eq!(s.kind, SecretKind::PrivateKeyHex);
    assert_eq!(covered(&text, &s), HEX64);
    assert_eq!(redact(&text, &[s]), "private key: [redacted: private key]");
}

#[test]
fn a_0x_prefixed_hex_key_with_a_chinese_hint_is_found() {
    let key = format!("0x{}", HEX64.to_uppercase());
    let text = format!("这是我的私钥{key}能帮我恢复吗");
    let s = one(&text);
    assert_eq!(
        (s.kind, covered(&text, &s)),
        (SecretKind::PrivateKeyHex, key.as_str())
    );
}

#[test]
fn wif_keys_are_found_with_a_verified_checksum() {
    for wif in [WIF_UNCOMPRESSED, WIF_COMPRESSED] {
        let text = format!("what is this? {wif}");
        let s = one(&text);
        assert_eq!(
            (s.kind, s.checksum_ok, covered(&text, &s)),
            (SecretKind::PrivateKeyWif, true, wif)
        );
    }
}

#[test]
fn a_wif_shaped_token_with_a_bad_checksum_needs_a_key_hint() {
    let bad = WIF_COMPRESSED.replace("98617", "98618");
    assert_none(&bad);
    let s = one(&format!("my privkey {bad}"));
    assert_eq!((s.kind, s.checksum_ok), (SecretKind::PrivateKeyWif, false));
}

#[test]
fn an_xprv_is_found_with_a_verified_checksum_and_a_truncated_one_without() {
    let text = format!("xprv: {XPRV}\n");
    let s = one(&text);
    assert_eq!(
        (s.kind, s.checksum_ok, covered(&text, &s)),
        (SecretKind::ExtendedPrivateKey, true, XPRV)
    );
    assert_eq!(
        redact(&text, &[s]),
        "xprv: [redacted: extended private key]\n"
    );
    let s = one(&XPRV[..80]);
    assert_eq!(
        (s.kind, s.checksum_ok),
        (SecretKind::ExtendedPrivateKey, false)
    );
    let s = one(XPRV_MISTYPED);
    assert_eq!(
        (s.kind, s.checksum_ok, s.range),
        (
            SecretKind::ExtendedPrivateKey,
            false,
            0..XPRV_MISTYPED.len()
        )
    );
}

// ----- Redaction -----

#[test]
fn redaction_labels_are_as_documented() {
    let seed = SecretSpan {
        kind: SecretKind::SeedPhrase,
        range: 0..1,
        words: 24,
        checksum_ok: true,
    };
    assert_eq!(seed.label(), "[redacted: seed phrase, 24 words]");
    let hex = SecretSpan {
        kind: SecretKind::PrivateKeyHex,
        words: 1,
        ..seed.clone()
    };
    assert_eq!(hex.label(), "[redacted: private key]");
    let wif = SecretSpan {
        kind: SecretKind::PrivateKeyWif,
        words: 1,
        ..seed.clone()
    };
    assert_eq!(wif.label(), "[redacted: private key]");
    let x = SecretSpan {
        kind: SecretKind::ExtendedPrivateKey,
        words: 1,
        ..seed
    };
    assert_eq!(x.label(), "[redacted: extended private key]");
}

#[test]
fn redacting_a_message_with_several_secrets_leaves_no_part_of_them() {
    let zh = mnemonic(Language::SimplifiedChinese, &[0x21; 16]);
    let text = format!(
        "Hello! seed:\n1. {}\nxprv {XPRV}, wif {WIF_UNCOMPRESSED}, 私钥：{HEX64}；中文 {zh} 谢谢 txid 0x{HEX64}",
        LEGAL_12.replace(' ', "\n2. ")
    );
    let spans = find_secrets(&text);
    assert_eq!(spans.len(), 5, "{spans:?}");
    assert!(spans.windows(2).all(|p| p[0].range.end <= p[1].range.start));
    assert!(
        spans
            .iter()
            .all(|s| text.is_char_boundary(s.range.start) && text.is_char_boundary(s.range.end))
    );
    let out = redact(&text, &spans);
    for secret in [XPRV, WIF_UNCOMPRESSED] {
        for window in secret.as_bytes().windows(8) {
            assert!(
                !out.as_bytes().windows(8).any(|w| w == window),
                "leak of {secret} in {out}"
            );
        }
    }
    for word in ["legal", "winner", "thank", "sausage", "yellow"] {
        assert!(!out.contains(word), "{word} leaked: {out}");
    }
    assert!(!out.contains(&zh));
    assert!(
        out.contains("中文 [redacted: seed phrase, 12 words] 谢谢"),
        "{out}"
    );
    // The tx hash right after "txid" is kept: it is a tx hash, not the key.
    assert!(out.ends_with(&format!("txid 0x{HEX64}")), "{out}");
    assert_eq!(out.matches("[redacted: private key]").count(), 2);
}

#[test]
fn redact_tolerates_unsorted_overlapping_and_misaligned_spans() {
    let text = "ab私钥cd";
    let spans = [
        SecretSpan {
            kind: SecretKind::PrivateKeyHex,
            range: 3..4,
            words: 1,
            checksum_ok: false,
        },
        SecretSpan {
            kind: SecretKind::PrivateKeyHex,
            range: 2..6,
            words: 1,
            checksum_ok: false,
        },
        SecretSpan {
            kind: SecretKind::PrivateKeyHex,
            range: 7..100,
            words: 1,
            checksum_ok: false,
        },
    ];
    let out = redact(text, &spans);
    assert!(
        !out.contains('私') && !out.contains('钥') && !out.contains("cd"),
        "{out}"
    );
    assert!(out.starts_with("ab[redacted: private key]"));
    assert_eq!(redact(text, &[]), text);
}

// ----- False positives -----

#[test]
fn an_ordinary_12_word_english_sentence_is_not_flagged() {
    assert_none("I have tried to withdraw my USDT three times and it always fails");
}

#[test]
fn ordinary_english_paragraphs_are_not_flagged() {
    for text in [
        "Hello, I sent some ETH to my wallet about two hours ago but the balance still shows zero, what should I do?",
        "Please help me, my account is locked after I changed my phone number and I can not log in anymore.",
        "Why is the withdrawal fee so high today? Last week it was much lower and nothing else has changed.",
        "I want to close my account and move all my funds to another exchange, how long does it take?",
        "My deposit has been pending for a long time, the network shows enough confirmations already, please check it.",
        "Can you explain what a seed phrase is and why I should never share it with anyone, even support?",
        "I lost my phone and my recovery phrase, is there any way to get my coins back? Thank you",
    ] {
        assert_none(text);
    }
}

#[test]
fn a_prose_like_run_of_wordlist_words_with_a_bad_checksum_and_no_hint_is_not_flagged() {
    let run = "again able about all any area army art best better black blue";
    assert!(run.split(' ').all(|w| wordlists::en_index(w).is_some()));
    assert!(
        !is_valid_english(run),
        "pick another example: this one has a valid checksum"
    );
    assert_none(run);
    assert_none(&format!("So {run}."));
    let longer =
        "again able about all any area army art best better black blue bird fire gold glass rain";
    assert_none(longer);
}

#[test]
fn ordinary_chinese_sentences_are_not_flagged() {
    for text in [
        "我的提币一直没有到账怎么办请帮我看看谢谢",
        "你好，我昨天充值了一笔USDT，到现在还没有到账，麻烦帮我查一下是什么原因，谢谢！",
        "为什么我的账户被冻结了？我没有做任何违规的操作，请尽快给我一个解释，不然我要投诉了。",
        "提现手续费太高了，上个星期还没有这么贵，现在转一次要花好多钱，能不能降低一点费用呢",
        "我忘记了助记词怎么办？以前备份在手机上面但是手机坏了，请问还有没有办法找回我的钱包",
        "我在交易所买的币转到钱包以后一直显示确认中，已经过去三个小时了，区块浏览器上也查不到这笔交易的记录，是不是转错网络了？",
        "您好请问如何开通合约交易以及杠杆倍数最高可以设置多少倍风险提示在哪里可以看到呢我是新手不太懂",
        "客服你好",
        "人民币充值到账时间一般是多久",
    ] {
        assert_none(text);
    }
}

#[test]
fn addresses_are_not_flagged() {
    for text in [
        "send to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa please",
        "my address 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
        "ETH: 0x742d35Cc6634C0532925a3b844Bc454e4438f44e private key is safe",
        "TRON 地址 TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7 私钥我不会给你",
    ] {
        assert_none(text);
    }
}

#[test]
fn transaction_hashes_are_not_flagged() {
    assert_none(&format!("txid: {HEX64}"));
    assert_none(HEX64);
    assert_none(&format!("my deposit 0x{HEX64} is missing"));
    assert_none(&format!("交易哈希：0x{HEX64}"));
    // A key hint elsewhere loses to a closer tx hint.
    assert_none(&format!(
        "my private key was stolen! here is the hacker's tx hash: 0x{HEX64}"
    ));
}

#[test]
fn extended_public_keys_are_not_flagged() {
    assert_none(&format!("my xpub is {XPUB}"));
    assert_none("what is an xprv? is it the same as zprv");
}

#[test]
fn numbers_uids_and_amounts_are_not_flagged() {
    for text in [
        "UID 123456789, withdrew 1,234.5678 USDT at 2024-05-01 12:30:45, fee 1 USDT, order 9876543210123456789",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24",
        "0.00012345 BTC ≈ 8.12 USD; 100000000000000000000000000000000000000000000000000000 wei",
        "order id 2f1b6a0c-4e3a-4d2b-9a7e-0c5d3b2a1f00",
    ] {
        assert_none(text);
    }
}

#[test]
fn short_messages_take_the_fast_path() {
    let worth = |t| text::worth_scanning(t, 10, 10);
    assert!(!worth("where is my withdrawal?"));
    assert!(!worth("我的币没到账"));
    assert!(worth(HEX64));
    assert!(worth(ABANDON_12));
}

#[test]
fn a_prose_run_after_a_seed_hint_is_not_flagged() {
    assert_none(
        "about my seed phrase:      that they must include this license text.  You can also distribute",
    );
}

#[test]
fn a_phrase_split_over_messages_is_redacted_in_each_part_and_the_rest_kept() {
    let first = "my seed phrase is abandon ability able about above absent";
    let (second, found) = Redacted::scan("absorb abstract absurd abuse access accident");
    assert!(found.is_empty(), "half a phrase alone is not a secret");
    let split = redact_with_history(&["hello", first], &second);
    assert_eq!(split.history[0], None, "the unrelated message is untouched");
    let earlier = split.history[1]
        .as_ref()
        .expect("the first half is redacted");
    assert!(earlier.starts_with("my seed phrase is [redacted: seed phrase"));
    assert!(!earlier.contains("abandon"));
    let current = split.current.expect("the second half is redacted");
    assert!(!current.contains("absorb"), "{current}");
    assert_eq!(split.spans.len(), 1);
    // Nothing more to find in what redaction left.
    let again = redact_with_history(&["hello", earlier], &current);
    assert_eq!(
        again,
        SplitRedaction {
            history: vec![None, None],
            ..Default::default()
        }
    );
}

#[test]
fn a_phrase_with_a_misspelt_word_is_found_by_its_corrected_checksum() {
    for (typo, fixed) in [
        ("sausge", "sausage"),   // a letter left out
        ("sausagge", "sausage"), // one added
        ("sausaje", "sausage"),  // one changed
        ("usefull", "useful"),
        ("yelow", "yellow"),
        ("wrtoh", ""), // two edits: no correction, and no structure or hint
    ] {
        let text = format!(
            "hi {} ok",
            LEGAL_12.replacen(fixed_or(fixed, "worth"), typo, 1)
        );
        let spans = find_secrets(&text);
        if fixed.is_empty() {
            assert!(spans.is_empty(), "{text}: {spans:?}");
            continue;
        }
        assert_eq!(spans.len(), 1, "{text}: {spans:?}");
        assert!(spans[0].checksum_ok, "{text}");
        assert_eq!(spans[0].words, 12, "{text}");
        let redacted = redact(&text, &spans);
        assert_eq!(
            redacted, "hi [redacted: seed phrase, 12 words] ok",
            "{text}"
        );
    }
}

#[test]
fn a_misspelt_phrase_pasted_after_a_question_is_found() {
    let typed = LEGAL_12.replacen("sausage", "sausge", 1);
    let text = format!("can you help? {typed}");
    let span = one(&text);
    assert!(span.checksum_ok, "{text}");
    assert_eq!(covered(&text, &span), typed);
}

fn fixed_or<'a>(fixed: &'a str, or: &'a str) -> &'a str {
    if fixed.is_empty() { or } else { fixed }
}

#[test]
fn a_numbered_or_hinted_phrase_with_misspelt_words_is_found_without_its_checksum() {
    let words: Vec<&str> = LEGAL_12.split(' ').collect();
    let mut typed = words.clone();
    typed[2] = "thnak"; // two neighbours swapped
    typed[9] = "winer";
    let numbered = typed
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{}. {w}", i + 1))
        .collect::<Vec<_>>()
        .join(" ");
    let span = one(&numbered);
    assert!(!span.checksum_ok);
    assert_eq!(span.words, 12);
    assert_eq!(&numbered[span.range.clone()], &numbered[3..]);
    let hinted = format!("my recovery phrase is {} is it safe", typed.join(" "));
    let span = one(&hinted);
    assert_eq!(span.words, 12, "{hinted}");
    assert!(redact(&hinted, &[span]).starts_with("my recovery phrase is [redacted"));
    // Three misspelt words are too many; unnumbered and unhinted, two are left alone too.
    let mut three = typed.clone();
    three[5] = "sausge";
    assert!(
        find_secrets(&three.join(" ")).is_empty(),
        "{}",
        three.join(" ")
    );
    assert!(find_secrets(&typed.join(" ")).is_empty());
}

#[test]
fn ordinary_text_with_misspellings_is_not_a_seed() {
    for text in [
        "i want to withdraw my money but the appp keeps saying error, please help me fix it soon",
        "My acount was locked after I tried the wrong pasword three times, how do I unlock it?",
        "bought some tokens yesterday, the price was great but the transfer is still pendng now",
        "seed round investors, please check the docment about the token unlock schedule first",
    ] {
        assert!(find_secrets(text).is_empty(), "{text}");
    }
}
