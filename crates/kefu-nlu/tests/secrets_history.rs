//! Phrases split over consecutive messages, through [`find_secrets_with_history`].
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed expectation is a failed test"
)]

use bip39::{Language, Mnemonic};
use kefu_nlu::secrets::{SecretKind, find_secrets, find_secrets_with_history, redact};

const LEGAL_12: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";

fn words(phrase: &str) -> Vec<&str> {
    phrase.split(' ').collect()
}

#[test]
fn six_plus_six_words_of_a_valid_phrase_are_found_in_both_messages() {
    let w = words(LEGAL_12);
    let first = format!("my seed phrase is {}", w[..6].join(" "));
    let second = w[6..].join(" ");
    // Each part alone is below every threshold.
    assert!(find_secrets(&first).is_empty());
    assert!(find_secrets(&second).is_empty());

    let scan = find_secrets_with_history(&[first.as_str()], &second);
    assert_eq!(scan.history.len(), 1);
    assert_eq!(scan.history[0].len(), 1, "{scan:?}");
    assert_eq!(scan.current.len(), 1, "{scan:?}");
    let (h, c) = (&scan.history[0][0], &scan.current[0]);
    assert_eq!(&first[h.range.clone()], w[..6].join(" "));
    assert_eq!(c.range, 0..second.len());
    assert_eq!((h.kind, h.checksum_ok), (SecretKind::SeedPhrase, true));
    assert_eq!((h.words, c.words), (6, 6));
    assert_eq!(
        redact(&first, &scan.history[0]),
        "my seed phrase is [redacted: seed phrase, 6 words]"
    );
    assert_eq!(
        redact(&second, &scan.current),
        "[redacted: seed phrase, 6 words]"
    );
}

#[test]
fn a_phrase_over_three_messages_and_an_unrelated_older_one_is_found_in_the_three() {
    let w = words(LEGAL_12);
    let older = "hello, my withdrawal is stuck";
    let parts = [w[..4].join(" "), w[4..8].join(" "), w[8..].join(" ")];
    let history = [older, parts[0].as_str(), parts[1].as_str()];
    let scan = find_secrets_with_history(&history, &parts[2]);
    assert!(scan.history[0].is_empty());
    for (i, part) in parts[..2].iter().enumerate() {
        assert_eq!(scan.history[i + 1].len(), 1, "{scan:?}");
        assert_eq!(scan.history[i + 1][0].range, 0..part.len());
    }
    assert_eq!(scan.current[0].range, 0..parts[2].len());
}

#[test]
fn one_word_per_message_is_found() {
    let w = words(LEGAL_12);
    let scan = find_secrets_with_history(&w[..11], w[11]);
    assert!(scan.history.iter().all(|h| h.len() == 1), "{scan:?}");
    assert_eq!(scan.current.len(), 1);
    assert_eq!(scan.current[0].words, 1);
    assert_eq!(
        redact(w[11], &scan.current),
        "[redacted: seed phrase, 1 word]"
    );
}

#[test]
fn a_split_phrase_with_odd_separators_and_a_bad_checksum_is_found_when_hinted() {
    let broken = LEGAL_12.replace("yellow", "zoo");
    let w = words(&broken);
    let first = format!("backup words: {}", w[..7].join("~"));
    let second = w[7..].join("~");
    assert!(find_secrets(&first).is_empty() && find_secrets(&second).is_empty());
    let scan = find_secrets_with_history(&[first.as_str()], &second);
    assert_eq!(scan.current.len(), 1);
    assert!(!scan.current[0].checksum_ok);
    assert!(!redact(&first, &scan.history[0]).contains("legal"));
}

#[test]
fn a_chinese_phrase_split_over_two_messages_is_found() {
    let m = Mnemonic::from_entropy_in(Language::SimplifiedChinese, &[0x5d; 16])
        .unwrap()
        .to_string();
    let chars = words(&m);
    // Separated characters.
    let first = format!("助记词 {}", chars[..6].join(" "));
    let second = chars[6..].join(" ");
    let scan = find_secrets_with_history(&[first.as_str()], &second);
    assert_eq!(scan.current.len(), 1, "{scan:?}");
    assert_eq!(scan.history[0].len(), 1);
    assert_eq!(
        &first[scan.history[0][0].range.clone()],
        chars[..6].join(" ")
    );
    // Contiguous characters: the two halves are read glued together as well.
    let first = format!("我的助记词是{}", chars[..5].concat());
    let second = chars[5..].concat();
    let scan = find_secrets_with_history(&[first.as_str()], &second);
    assert_eq!(scan.current.len(), 1, "{scan:?}");
    assert_eq!(scan.current[0].range, 0..second.len());
    assert_eq!(
        &first[scan.history[0][0].range.clone()],
        chars[..5].concat()
    );
}

#[test]
fn a_secret_in_the_new_message_alone_is_found_and_the_history_left_alone() {
    let history = ["hi", "my wallet is empty"];
    let scan = find_secrets_with_history(&history, LEGAL_12);
    assert_eq!(scan.current.len(), 1);
    assert_eq!(scan.current[0].words, 12);
    assert!(scan.history.iter().all(Vec::is_empty));
}

#[test]
fn a_secret_that_does_not_reach_the_new_message_is_not_reported_again() {
    let w = words(LEGAL_12);
    let history = [w[..6].join(" "), w[6..].join(" ")];
    let history: Vec<&str> = history.iter().map(String::as_str).collect();
    let scan = find_secrets_with_history(&history, "thanks, what now?");
    assert!(scan.current.is_empty());
    assert!(scan.history.iter().all(Vec::is_empty), "{scan:?}");
}

#[test]
fn ordinary_conversations_are_not_flagged() {
    let conversations: [&[&str]; 3] = [
        &[
            "hello",
            "I sent USDT to my wallet",
            "it has been two hours",
            "can you check please",
        ],
        &[
            "我的提币一直没到账",
            "已经三个小时了",
            "交易哈希在这里",
            "麻烦帮我看看",
        ],
        &[
            "please help",
            "that is what they said",
            "you can find it there",
            "any time again",
        ],
    ];
    for messages in conversations {
        let (last, history) = messages.split_last().unwrap();
        let scan = find_secrets_with_history(history, last);
        assert!(scan.current.is_empty(), "{messages:?}: {scan:?}");
        assert!(scan.history.iter().all(Vec::is_empty), "{messages:?}");
    }
}

#[test]
fn an_empty_history_is_find_secrets() {
    let scan = find_secrets_with_history(&[], LEGAL_12);
    assert_eq!(scan.current, find_secrets(LEGAL_12));
    assert!(scan.history.is_empty());
}
