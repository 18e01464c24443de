//! English mnemonics written compactly, which the word runs of [`super::mnemonic`] miss:
//! - **glued** words, `legalwinnerthank…` or `LegalWinnerThank…`: one run of letters, or groups of
//!   them set apart by spaces or line breaks, that splits wholly into 12–24 wordlist words;
//! - **four-letter** words, `lega winn than year …`: BIP39 English words are unique in their first
//!   four letters, and steel backup plates keep only those; a run of words and four-letter
//!   prefixes (with the separators and list numbering a run allows), at least one of them a
//!   prefix; or, anywhere in a longer run, a window at least half prefixes.
//!
//! Such writings carry nothing else that marks a seed, so either is reported only when a BIP39
//! checksum verifies: for glued words over the whole run, for prefixes in a window leaving at most
//! two words of the run over (three chances of 1 in 16 or less for a run that is no seed, as for
//! whole words).

use std::ops::Range;

use bip39::Language;

use super::text::{ItemKind, Scan, is_invisible};
use super::wordlists::{MNEMONIC_LENGTHS, en_index, en_prefix_index, verifies};
use super::{SecretKind, SecretSpan};

/// The fewest letters 12 glued wordlist words can have (each has 3 to 8).
pub(super) const MIN_GLUED_LETTERS: usize = 36;
/// Steps of the search for splits, for all the glued runs of one message together: a run of
/// letters can split into words in many ways, and a message built to make the search long must
/// not hold up the ones after it. A real phrase is found in a few dozen.
const MAX_SPLIT_STEPS: usize = 50_000;
/// Words of a run kept out of its checksum window, at most.
const MAX_LEFTOVER_WORDS: usize = 2;

pub(super) fn scan_compact(scan: &Scan<'_>, spans: &mut Vec<SecretSpan>) {
    glued(scan, spans);
    prefixed(scan, spans);
}

fn seed(range: Range<usize>, words: usize) -> SecretSpan {
    SecretSpan {
        kind: SecretKind::SeedPhrase,
        range,
        words,
        checksum_ok: true,
    }
}

/// Runs of letters set apart only by spaces or line breaks, each a candidate glued phrase: one
/// token (`legalwinnerthank…`) or groups of glued words (`legalwinnerthankyear
/// wavesausageworthuseful …`, on two lines or in threes). Only tokens that split into wordlist
/// words themselves take part, and a candidate holds one of more than eight letters (no single
/// word); of the stretches of such tokens, the longest that splits into a valid mnemonic is taken.
fn glued(scan: &Scan<'_>, spans: &mut Vec<SecretSpan>) {
    let text = scan.text();
    let mut steps = MAX_SPLIT_STEPS;
    let mut group: Vec<Range<usize>> = Vec::new();
    for item in &scan.items {
        match item.kind {
            ItemKind::Word(idx)
                if idx.is_some() || {
                    let letters = &text[item.range.clone()];
                    letters.len() > 8
                        && letters.len() <= 24 * 8
                        && letters.bytes().all(|b| b.is_ascii_alphabetic())
                        && splits(letters)
                } =>
            {
                group.push(item.range.clone());
            }
            ItemKind::Sep {
                space: true,
                comma: false,
                ..
            } => {}
            _ => glued_group(text, &std::mem::take(&mut group), &mut steps, spans),
        }
    }
    glued_group(text, &group, &mut steps, spans);
}

/// Stretches of [`MAX_GLUED_GROUP`] tokens or fewer.
const MAX_GLUED_GROUP: usize = 8;

fn glued_group(text: &str, group: &[Range<usize>], steps: &mut usize, spans: &mut Vec<SecretSpan>) {
    if !group.iter().any(|r| r.len() > 8) {
        return;
    }
    let mut best: Option<(Range<usize>, usize)> = None;
    for i in 0..group.len() {
        for j in (i + 1..=group.len().min(i + MAX_GLUED_GROUP)).rev() {
            let stretch = &group[i..j];
            let letters: usize = stretch.iter().map(Range::len).sum();
            if !(MIN_GLUED_LETTERS..=24 * 8).contains(&letters)
                || !stretch.iter().any(|r| r.len() > 8)
                || best.as_ref().is_some_and(|(b, _)| b.len() >= j - i)
            {
                continue;
            }
            // Invisible characters inside a word are set aside; any other non-ASCII letter ends
            // the matter.
            let joined: String = stretch
                .iter()
                .flat_map(|r| text[r.clone()].chars())
                .filter(|&c| !is_invisible(c))
                .collect();
            if !joined.bytes().all(|b| b.is_ascii_alphabetic()) {
                continue;
            }
            if let Some(words) = glued_words(&joined, steps) {
                best = Some((i..j, words));
            }
        }
    }
    if let Some((w, words)) = best {
        spans.push(seed(group[w.start].start..group[w.end - 1].end, words));
    }
}

/// Does `letters` split wholly into wordlist words?
fn splits(letters: &str) -> bool {
    ends(letters).first().copied().unwrap_or(false)
}

/// `ends[i]`: can `letters[i..]` be split into wordlist words? Built from the end.
fn ends(letters: &str) -> Vec<bool> {
    let n = letters.len();
    let mut ends = vec![false; n + 1];
    if !letters.bytes().all(|b| b.is_ascii_alphabetic()) {
        return ends;
    }
    ends[n] = true;
    for i in (0..n).rev() {
        ends[i] = (3..=8)
            .filter(|len| i + len <= n && ends[i + len])
            .any(|len| en_index(&letters[i..i + len]).is_some());
    }
    ends
}

/// The number of words of a split of `letters` into wordlist words that is a valid mnemonic,
/// searched within `steps`.
fn glued_words(letters: &str, steps: &mut usize) -> Option<usize> {
    let ends = ends(letters);
    if !ends[0] {
        return None;
    }
    let mut path = Vec::with_capacity(24);
    split(letters, 0, &ends, &mut path, steps)
}

/// Depth-first over the splits of `letters[at..]`, longest words first, each call one of `steps`.
fn split(
    letters: &str,
    at: usize,
    ends: &[bool],
    path: &mut Vec<u16>,
    steps: &mut usize,
) -> Option<usize> {
    if *steps == 0 {
        return None;
    }
    *steps -= 1;
    let left = letters.len() - at;
    if left == 0 {
        return (MNEMONIC_LENGTHS.contains(&path.len()) && verifies(Language::English, path))
            .then_some(path.len());
    }
    // What is left must fit in the words a mnemonic has left, of 3 to 8 letters each.
    if left > (24 - path.len()) * 8 {
        return None;
    }
    for len in (3..=8).rev() {
        let end = at + len;
        if end > letters.len() || !ends[end] {
            continue;
        }
        if let Some(idx) = en_index(&letters[at..end]) {
            path.push(idx);
            let found = split(letters, end, ends, path, steps);
            path.pop();
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// A word of a run: its range, its index, and whether it was only a prefix.
struct Word {
    range: Range<usize>,
    idx: u16,
    prefix: bool,
}

fn prefixed(scan: &Scan<'_>, spans: &mut Vec<SecretSpan>) {
    let mut run: Vec<Word> = Vec::new();
    for item in &scan.items {
        match item.kind {
            ItemKind::Word(word) => {
                let text = &scan.text()[item.range.clone()];
                let found = word
                    .map(|idx| (idx, false))
                    .or_else(|| en_prefix_index(text).map(|idx| (idx, true)));
                match found {
                    Some((idx, prefix)) => run.push(Word {
                        range: item.range.clone(),
                        idx,
                        prefix,
                    }),
                    None => check_run(&std::mem::take(&mut run), spans),
                }
            }
            ItemKind::Num | ItemKind::Sep { .. } => {}
            _ => check_run(&std::mem::take(&mut run), spans),
        }
    }
    check_run(&run, spans);
}

/// Reports the longest, then earliest, window of `run` that verifies and either holds a prefix
/// and leaves at most [`MAX_LEFTOVER_WORDS`] of the run over, or is at least half prefixes
/// wherever it lies (`fly pottery: card, waln, run, verb, …`: whole words before a phrase cut to
/// four letters; prose has next to no such windows).
fn check_run(run: &[Word], spans: &mut Vec<SecretSpan>) {
    let n = run.len();
    if n < MNEMONIC_LENGTHS[MNEMONIC_LENGTHS.len() - 1] || !run.iter().any(|w| w.prefix) {
        return;
    }
    let verifying = |w: &Range<usize>| {
        let idx: Vec<u16> = run[w.clone()].iter().map(|w| w.idx).collect();
        verifies(Language::English, &idx)
    };
    let prefixes = |w: &Range<usize>| run[w.clone()].iter().filter(|w| w.prefix).count();
    let windows = |len: usize| (0..=n - len).map(move |start| start..start + len);
    let lengths = || MNEMONIC_LENGTHS.iter().copied().filter(|&len| len <= n);
    let window = lengths()
        .filter(|&len| n - len <= MAX_LEFTOVER_WORDS)
        .flat_map(windows)
        .find(|w| prefixes(w) > 0 && verifying(w))
        .or_else(|| {
            lengths()
                .flat_map(windows)
                .find(|w| prefixes(w) * 2 >= w.len() && verifying(w))
        });
    if let Some(w) = window {
        let (first, last) = (&run[w.start], &run[w.end - 1]);
        spans.push(seed(first.range.start..last.range.end, w.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::find_secrets;

    const PHRASE: &str =
        "legal winner thank year wave sausage worth useful legal winner thank yellow";

    fn words() -> Vec<&'static str> {
        PHRASE.split(' ').collect()
    }

    fn title(w: &str) -> String {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
            .unwrap_or_default()
    }

    #[test]
    fn glued_words_are_found_whatever_their_case() {
        for text in [
            words().concat(),
            words().iter().map(|w| title(w)).collect::<String>(),
            format!("my wallet: {} pls help", words().concat().to_uppercase()),
            format!("{}\n{}", words()[..6].concat(), words()[6..].concat()),
            format!(
                "{} {} {}",
                words()[..4].concat(),
                words()[4..8].concat(),
                words()[8..].concat()
            ),
        ] {
            let spans = find_secrets(&text);
            assert_eq!(spans.len(), 1, "{text}: {spans:?}");
            assert_eq!(spans[0].words, 12, "{text}");
            assert!(spans[0].checksum_ok);
            let glued: String = text[spans[0].range.clone()]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            assert_eq!(glued.len(), words().concat().len(), "{text}: {glued}");
        }
    }

    #[test]
    fn four_letter_words_are_found_in_any_layout() {
        let four: Vec<String> = words()
            .iter()
            .map(|w| w[..w.len().min(4)].to_owned())
            .collect();
        for text in [
            four.join(" "),
            four.join("\n"),
            four.iter()
                .enumerate()
                .map(|(i, w)| format!("{}. {w}", i + 1))
                .collect::<Vec<_>>()
                .join(" "),
            format!("backup plate says {} ok?", four.join(" ").to_uppercase()),
        ] {
            let spans = find_secrets(&text);
            assert_eq!(spans.len(), 1, "{text}: {spans:?}");
            assert_eq!(spans[0].words, 12, "{text}");
            let found = &text[spans[0].range.clone()];
            assert!(
                found.to_lowercase().starts_with("lega") && found.to_lowercase().ends_with("yell"),
                "{text}: {found}"
            );
        }
        // Whole words and prefixes mixed.
        let mixed = "legal winn thank year wave saus worth useful lega winner than yellow";
        assert_eq!(find_secrets(mixed).len(), 1, "{mixed}");
        // After wordlist words that run into it: the window of prefixes alone.
        let after = format!("kitchen setup fly pottery: {}", four.join(", "));
        let spans = find_secrets(&after);
        assert_eq!(spans.len(), 1, "{after}: {spans:?}");
        assert!(after[spans[0].range.clone()].starts_with("lega"), "{after}");
    }

    #[test]
    fn a_message_built_to_make_the_split_search_long_is_bounded() {
        // Letters that split into short words in very many ways, in many glued runs.
        let token = "artistartistartistartistartistartistartist";
        let text = vec![token; 180].join(" ");
        // 8 KB of glued runs (the most a message keeps): no phrase, and the search ends within its
        // steps however many ways the letters split (about 5 ms in a release build).
        assert!(find_secrets(&text).is_empty());
    }

    #[test]
    fn the_split_search_stops_when_its_steps_run_out() {
        let glued = words().concat();
        // Enough steps: the phrase is found, and the steps are spent.
        let mut steps = super::MAX_SPLIT_STEPS;
        assert_eq!(super::glued_words(&glued, &mut steps), Some(12));
        assert!(steps < super::MAX_SPLIT_STEPS);
        // Too few: the search gives up, having spent exactly what it had.
        let mut steps = 5;
        assert_eq!(super::glued_words(&glued, &mut steps), None);
        assert_eq!(steps, 0);
    }

    #[test]
    fn a_bad_checksum_or_prose_is_not_reported() {
        // The last word changed: the checksum fails.
        let four: Vec<String> = words()
            .iter()
            .map(|w| w[..w.len().min(4)].to_owned())
            .collect();
        let mut bad = four.clone();
        bad[11] = "zoo".to_owned();
        assert!(find_secrets(&bad.join(" ")).is_empty());
        let mut glued = words();
        glued[11] = "zoo";
        assert!(find_secrets(&glued.concat()).is_empty());
        for text in [
            "than kept were also able then went into town with some more food and water",
            "supercalifragilisticexpialidociousandantidisestablishmentarianism",
            "https://example.com/aboutabandonabilityableaboveabsentabsorbabstractabsurd",
            "thisisaverylongwordwithoutanyspacesbecausemykeyboardbroke",
        ] {
            assert!(find_secrets(text).is_empty(), "{text}");
        }
    }
}
