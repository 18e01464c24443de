//! BIP39 mnemonics: runs of wordlist words (English), of single separated ideographs, and of
//! contiguous ideographs (Chinese). See the module documentation of [`super`] for the rules.

use std::ops::Range;

use bip39::Language;

use super::hints::{Context, SEED_HINTS, occurrences};
use super::text::{Item, ItemKind, Scan, is_cjk};
use super::wordlists::{
    MNEMONIC_LENGTHS, Randomness, en_near, is_word_pair, looks_random, random_evidence, verifies,
};
use super::{SecretKind, SecretSpan};

/// Minimum run length for a checksum-less seed phrase.
const MIN_SEED_WORDS: usize = 12;
/// Minimum run length when the run is both structured (numbered, one per line…) and hinted.
pub(super) const MIN_SEED_WORDS_STRONG: usize = 10;
/// How many run words may be left outside a checksum-verified window.
const MAX_LEFTOVER_WORDS: usize = 2;

/// Wordlist words that are frequent in ordinary English prose. A hinted (but unstructured) run with
/// a bad checksum in which more than a quarter of the words are from this list is prose, not a
/// seed: a random 12-word mnemonic has ≥ 4 of them with probability ≈ 0.05 %.
pub(super) const PROSE_WORDS: &[&str] = &[
    "about", "again", "all", "also", "always", "any", "before", "between", "can", "come", "find",
    "few", "give", "good", "have", "help", "into", "just", "know", "like", "make", "more", "much",
    "must", "need", "never", "now", "off", "often", "one", "only", "other", "over", "own",
    "please", "same", "say", "since", "still", "such", "that", "then", "there", "they", "this",
    "three", "time", "two", "under", "until", "upon", "use", "very", "want", "way", "what", "when",
    "where", "will", "you",
];

/// Characters allowed between a Chinese seed hint and the mnemonic (`助记词是…`, `助记词如下…`).
const HINT_CONNECTORS: &[char] = &['词', '詞', '码', '碼', '是', '为', '為', '如', '下'];
/// Characters allowed between a mnemonic and a seed hint after it (`…是我的助记词`).
const TRAILING_CONNECTORS: &[char] = &[
    '是', '為', '为', '我', '的', '这', '這', '那', '个', '個', '串', '组', '組', '就',
];
const MAX_CONNECTORS: usize = 4;

/// One word of a candidate run: its folded byte range and wordlist index per language.
#[derive(Debug, Clone)]
pub(super) struct RunWord {
    pub range: Range<usize>,
    /// `[English, unused]` or `[Simplified, Traditional]` indices.
    pub idx: [Option<u16>; 2],
}

#[derive(Debug, Default)]
struct Run {
    words: Vec<RunWord>,
    /// Gaps (between consecutive words) holding list numbering (a number one more than the
    /// previous gap's, so `man2/access.2 man2/alarm.2` is not numbered) / a line break / a comma.
    num_gaps: usize,
    newline_gaps: usize,
    comma_gaps: usize,
    /// Index into `words` where a gap containing a line break precedes the word.
    line_starts: Vec<usize>,
    /// For each gap, what it is made of apart from whitespace (0 when nothing): the numbers in it
    /// and its other separators. `legal~winner~thank` has equal non-zero signatures.
    gap_sigs: Vec<u64>,
    // State of the gap being read.
    gap_sig: u64,
    gap_num: Option<u32>,
    /// The number of the last numbered gap.
    last_num: Option<u32>,
    gap_newline: bool,
    gap_comma: bool,
}

impl Run {
    fn push(&mut self, word: RunWord) {
        if !self.words.is_empty() {
            if let Some(n) = self.gap_num {
                let sequential = self.last_num.is_none_or(|last| n == last + 1);
                self.num_gaps += usize::from(sequential);
                self.last_num = Some(n);
            }
            self.comma_gaps += usize::from(self.gap_comma);
            if self.gap_newline {
                self.newline_gaps += 1;
                self.line_starts.push(self.words.len());
            }
            self.gap_sigs.push(self.gap_sig);
        }
        self.gap_sig = 0;
        self.gap_num = None;
        self.gap_newline = false;
        self.gap_comma = false;
        self.words.push(word);
    }

    /// Reads one item between two words (`item` is its folded text).
    fn gap(&mut self, kind: ItemKind, item: &str) {
        match kind {
            ItemKind::Num => {
                // The last number of the gap counts (`1.2.` is unusual; `3)` is the usual).
                self.gap_num = Some(item.parse().unwrap_or(0));
                self.sign(b"#");
            }
            ItemKind::Sep {
                newline,
                comma,
                space,
                ..
            } => {
                self.gap_newline |= newline;
                self.gap_comma |= comma;
                if !space {
                    self.sign(item.as_bytes());
                }
            }
            _ => {}
        }
    }

    /// FNV-1a over what the gap is made of.
    fn sign(&mut self, bytes: &[u8]) {
        let mut h = if self.gap_sig == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.gap_sig
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.gap_sig = h.max(1);
    }

    /// The run cut at its odd gaps: a gap with a non-zero signature unlike the gaps on either side
    /// of it (`can you help? legal winner …`: the `?`). Sentence punctuation inside a run is where a
    /// phrase pasted into a sentence starts or ends; a phrase written `legal~winner~…` is not cut.
    fn sentences(&self) -> Vec<Range<usize>> {
        let sigs = &self.gap_sigs;
        let mut out = Vec::new();
        let mut start = 0;
        for (k, &sig) in sigs.iter().enumerate() {
            let odd = sig != 0
                && k.checked_sub(1).is_none_or(|p| sigs[p] != sig)
                && sigs.get(k + 1).is_none_or(|&n| n != sig);
            if odd {
                out.push(start..k + 1);
                start = k + 1;
            }
        }
        if start > 0 {
            out.push(start..self.words.len());
        }
        out
    }

    /// The longest stretch of words whose gaps all have the same non-zero signature.
    fn longest_uniform_stretch(&self) -> Range<usize> {
        let mut best = 0..0;
        let mut k = 0;
        while k < self.gap_sigs.len() {
            let sig = self.gap_sigs[k];
            let start = k;
            while k < self.gap_sigs.len() && self.gap_sigs[k] == sig {
                k += 1;
            }
            // Gaps start..k lie between words start..=k.
            if sig != 0 && k + 1 - start > best.len() {
                best = start..k + 1;
            }
        }
        best
    }

    /// Numbered, one word per line, or a comma-separated list. (Every word set apart by the same
    /// other separator, `legal~winner~…`, is [`Run::longest_uniform_stretch`].)
    fn structured(&self) -> bool {
        let gaps = self.words.len().saturating_sub(1);
        gaps > 0
            && (self.num_gaps * 2 >= gaps || self.newline_gaps == gaps || self.comma_gaps == gaps)
    }
}

/// Which language(s) a run is checked against.
#[derive(Debug, Clone, Copy)]
enum Script {
    English,
    Chinese,
}

impl Script {
    fn languages(self) -> &'static [(usize, Language)] {
        match self {
            Script::English => &[(0, Language::English)],
            Script::Chinese => &[
                (0, Language::SimplifiedChinese),
                (1, Language::TraditionalChinese),
            ],
        }
    }
}

/// The indices of `words` in the list of `slot`, when every word is in it.
fn indices(words: &[RunWord], slot: usize) -> Option<Vec<u16>> {
    words.iter().map(|w| w.idx[slot]).collect()
}

/// Does `words` form a valid BIP39 mnemonic in one of the script's lists? Returns its indices.
fn checksum_verifies(script: Script, words: &[RunWord]) -> Option<Vec<u16>> {
    if !MNEMONIC_LENGTHS.contains(&words.len()) {
        return None;
    }
    script.languages().iter().find_map(|&(slot, lang)| {
        let idx = indices(words, slot)?;
        verifies(lang, &idx).then_some(idx)
    })
}

fn span_of(words: &[RunWord], checksum_ok: bool) -> Option<SecretSpan> {
    let (first, last) = (words.first()?, words.last()?);
    Some(SecretSpan {
        kind: SecretKind::SeedPhrase,
        range: first.range.start..last.range.end,
        words: words.len(),
        checksum_ok,
    })
}

/// Rule 1: the longest, then earliest, checksum-verified window leaving ≤ 2 words of `words` over.
fn verified_window(script: Script, words: &[RunWord]) -> Option<SecretSpan> {
    let n = words.len();
    MNEMONIC_LENGTHS
        .iter()
        .filter(|&&len| len <= n && n - len <= MAX_LEFTOVER_WORDS)
        .flat_map(|&len| (0..=n - len).map(move |start| start..start + len))
        .find(|w| checksum_verifies(script, &words[w.clone()]).is_some())
        .and_then(|w| span_of(&words[w], true))
}

fn evaluate_run(
    script: Script,
    run: &Run,
    always_seed_like: bool,
    ctx: &mut Context<'_, '_>,
    spans: &mut Vec<SecretSpan>,
) {
    let n = run.words.len();
    if n < MIN_SEED_WORDS_STRONG {
        return;
    }
    if n >= MIN_SEED_WORDS
        && let Some(span) = verified_window(script, &run.words)
    {
        spans.push(span);
        return;
    }
    // Rule 1 again in each sentence of the run.
    let found = spans.len();
    for sentence in run.sentences() {
        if sentence.len() >= MIN_SEED_WORDS {
            spans.extend(verified_window(script, &run.words[sentence]));
        }
    }
    if spans.len() > found {
        return;
    }
    let structured = run.structured();
    let hint = ctx.seed_hint();
    let min = if structured && hint {
        MIN_SEED_WORDS_STRONG
    } else {
        MIN_SEED_WORDS
    };
    if (always_seed_like || structured) && n >= min {
        spans.extend(span_of(&run.words, false));
        return;
    }
    // A structured stretch inside a longer run (`is this my seed? legal~winner~…`): only it.
    let stretch = run.longest_uniform_stretch();
    let stretch_min = if hint {
        MIN_SEED_WORDS_STRONG
    } else {
        MIN_SEED_WORDS
    };
    if stretch.len() >= stretch_min {
        let words = &run.words[stretch];
        let found = verified_window(script, words).or_else(|| span_of(words, false));
        spans.extend(found);
        return;
    }
    let hinted_seed =
        hint && !(matches!(script, Script::English) && prose_words(&run.words) * 4 > n);
    // A user who lost a word or two says so next to the rest ("my seed phrase, the last word is
    // missing: …"), and 10 or 11 words are a phrase found by trying the rest.
    if hinted_seed && n >= MIN_SEED_WORDS_STRONG {
        spans.extend(span_of(&run.words, false));
        return;
    }
    // Rule 3: a seed per line inside a longer prose-like run.
    if run.line_starts.is_empty() {
        return;
    }
    let mut bounds = vec![0];
    bounds.extend(run.line_starts.iter().copied());
    bounds.push(n);
    for pair in bounds.windows(2) {
        if let [a, b] = *pair
            && b - a >= MIN_SEED_WORDS
        {
            spans.extend(verified_window(script, &run.words[a..b]));
        }
    }
}

/// How many words of an English run are frequent prose words.
fn prose_words(words: &[RunWord]) -> usize {
    let list = Language::English.word_list();
    words
        .iter()
        .filter(|w| w.idx[0].is_some_and(|i| PROSE_WORDS.contains(&list[usize::from(i)])))
        .count()
}

pub(super) fn scan_english(
    scan: &Scan<'_>,
    ctx: &mut Context<'_, '_>,
    spans: &mut Vec<SecretSpan>,
) {
    let mut run = Run::default();
    for item in &scan.items {
        match item.kind {
            ItemKind::Word(Some(i)) => run.push(RunWord {
                range: item.range.clone(),
                idx: [Some(i), None],
            }),
            kind @ (ItemKind::Num | ItemKind::Sep { .. }) => {
                run.gap(kind, &scan.text()[item.range.clone()]);
            }
            _ => evaluate_run(
                Script::English,
                &std::mem::take(&mut run),
                false,
                ctx,
                spans,
            ),
        }
    }
    evaluate_run(Script::English, &run, false, ctx, spans);
}

/// A misspelt word may stand in a run this many times at most.
const MAX_MISSPELT: usize = 2;
/// A misspelt word's corrections tried against the checksum, at most.
const MAX_CORRECTIONS: usize = 2;

/// English runs with one or two misspelt words (`sausge` for `sausage`), which [`scan_english`]
/// reads as two short runs. A misspelt word is one of 4–9 letters, not in the list, one edit from
/// a wordlist word. Such a run is reported
/// - when it, or one of its sentences (cut at odd gaps, as [`Run::sentences`] cuts), has exactly
///   12, 15, 18, 21 or 24 words, one misspelt with at most two corrections, and one correction
///   makes the checksum verify → `checksum_ok = true` (two chances of 1 in 16 or less for each
///   run or sentence that is no seed); or
/// - when it is seed-like as [`evaluate_run`]'s rule 2 asks (structured, or hinted and not prose)
///   with at least 12 words (10 with a hint) → `checksum_ok = false`.
pub(super) fn scan_english_misspelt(
    scan: &Scan<'_>,
    ctx: &mut Context<'_, '_>,
    spans: &mut Vec<SecretSpan>,
) {
    let mut run = Run::default();
    // (position in the run, its corrections)
    let mut misspelt: Vec<(usize, Vec<u16>)> = Vec::new();
    for item in &scan.items {
        match item.kind {
            ItemKind::Word(Some(i)) => run.push(RunWord {
                range: item.range.clone(),
                idx: [Some(i), None],
            }),
            ItemKind::Word(None) => {
                let near = en_near(&scan.text()[item.range.clone()]);
                if near.is_empty() || misspelt.len() == MAX_MISSPELT {
                    evaluate_misspelt(&run, &misspelt, ctx, spans);
                    run = Run::default();
                    misspelt.clear();
                    if near.is_empty() {
                        continue;
                    }
                }
                misspelt.push((run.words.len(), near));
                run.push(RunWord {
                    range: item.range.clone(),
                    idx: [None, None],
                });
            }
            kind @ (ItemKind::Num | ItemKind::Sep { .. }) => {
                run.gap(kind, &scan.text()[item.range.clone()]);
            }
            _ => {
                evaluate_misspelt(&run, &misspelt, ctx, spans);
                run = Run::default();
                misspelt.clear();
            }
        }
    }
    evaluate_misspelt(&run, &misspelt, ctx, spans);
}

fn evaluate_misspelt(
    run: &Run,
    misspelt: &[(usize, Vec<u16>)],
    ctx: &mut Context<'_, '_>,
    spans: &mut Vec<SecretSpan>,
) {
    let n = run.words.len();
    if misspelt.is_empty() || n < MIN_SEED_WORDS_STRONG {
        return;
    }
    // The whole run, or one of its sentences (a phrase pasted after `…? `), of a mnemonic's length
    // and with one misspelt word in it.
    let whole = std::iter::once(0..n);
    for range in whole.chain(run.sentences()) {
        let inside: Vec<&(usize, Vec<u16>)> = misspelt
            .iter()
            .filter(|(at, _)| range.contains(at))
            .collect();
        let [(at, fixes)] = inside[..] else { continue };
        if !MNEMONIC_LENGTHS.contains(&range.len()) || fixes.len() > MAX_CORRECTIONS {
            continue;
        }
        let words = &run.words[range.clone()];
        let mut idx: Vec<u16> = words.iter().map(|w| w.idx[0].unwrap_or(0)).collect();
        for &fix in fixes {
            idx[at - range.start] = fix;
            if verifies(Language::English, &idx) {
                spans.extend(span_of(words, true));
                return;
            }
        }
    }
    let structured = run.structured();
    let hint = ctx.seed_hint();
    let min = if hint {
        MIN_SEED_WORDS_STRONG
    } else {
        MIN_SEED_WORDS
    };
    let seed_like = structured || (hint && prose_words(&run.words) * 4 <= n);
    if seed_like && n >= min {
        spans.extend(span_of(&run.words, false));
    }
}

fn is_cjk_item(item: Option<&Item>) -> bool {
    item.is_some_and(|i| matches!(i.kind, ItemKind::Cjk(..)))
}

/// (a) Single ideographs set apart by separators or numbering (`的 一 是…`, `1.的 2.一…`,
/// `的!一!是…`). The first word may be the last ideograph of a longer run and the last word the
/// first of one (`助记词的!一!…!是谢谢`): people glue the phrase to the words around it.
pub(super) fn scan_chinese_separated(
    scan: &Scan<'_>,
    ctx: &mut Context<'_, '_>,
    spans: &mut Vec<SecretSpan>,
) {
    let items = &scan.items;
    let mut run = Run::default();
    for (k, item) in items.iter().enumerate() {
        match item.kind {
            ItemKind::Cjk(hans, hant) => {
                let glued_before = is_cjk_item(k.checked_sub(1).and_then(|p| items.get(p)));
                let glued_after = is_cjk_item(items.get(k + 1));
                let word = RunWord {
                    range: item.range.clone(),
                    idx: [hans, hant],
                };
                let listed = hans.is_some() || hant.is_some();
                match (glued_before, glued_after) {
                    (false, false) if listed => run.push(word),
                    // The first ideograph of a run after a separated phrase: its last word.
                    (false, true) if listed && !run.words.is_empty() => {
                        run.push(word);
                        evaluate_run(Script::Chinese, &std::mem::take(&mut run), true, ctx, spans);
                    }
                    // The last ideograph of a run: maybe the first word of a separated phrase.
                    (true, false) if listed => {
                        evaluate_run(Script::Chinese, &std::mem::take(&mut run), true, ctx, spans);
                        run.push(word);
                    }
                    _ => evaluate_run(Script::Chinese, &std::mem::take(&mut run), true, ctx, spans),
                }
            }
            kind @ (ItemKind::Num | ItemKind::Sep { .. }) => {
                run.gap(kind, &scan.text()[item.range.clone()]);
            }
            _ => evaluate_run(Script::Chinese, &std::mem::take(&mut run), true, ctx, spans),
        }
    }
    evaluate_run(Script::Chinese, &run, true, ctx, spans);
}

/// (b) Contiguous ideographs. Invisible characters between them do not count.
pub(super) fn scan_chinese_contiguous(
    scan: &Scan<'_>,
    ctx: &mut Context<'_, '_>,
    spans: &mut Vec<SecretSpan>,
) {
    let mut segment: Vec<&Item> = Vec::new();
    for item in &scan.items {
        match item.kind {
            ItemKind::Cjk(..) => segment.push(item),
            ItemKind::Sep {
                invisible: true, ..
            } if !segment.is_empty() => {}
            _ => {
                if segment.len() >= MIN_SEED_WORDS {
                    check_contiguous(scan, &segment, ctx, spans);
                }
                segment.clear();
            }
        }
    }
    if segment.len() >= MIN_SEED_WORDS {
        check_contiguous(scan, &segment, ctx, spans);
    }
    scan_chinese_grouped(scan, ctx, spans);
}

/// Characters in groups set apart only by spaces or line breaks, as a backup card has them
/// (`的一是在 不了有和 人这中大`, two lines of six): the groups, each of at most 12 characters,
/// are read again as one run by [`check_contiguous`] (each group on its own was read above).
fn scan_chinese_grouped(scan: &Scan<'_>, ctx: &mut Context<'_, '_>, spans: &mut Vec<SecretSpan>) {
    // The groups read so far, how many, and the group being read.
    let mut run: Vec<&Item> = Vec::new();
    let mut groups = 0usize;
    let mut group: Vec<&Item> = Vec::new();
    for item in &scan.items {
        match item.kind {
            ItemKind::Cjk(..) => group.push(item),
            ItemKind::Sep {
                invisible: true, ..
            } if !group.is_empty() => {}
            ItemKind::Sep { space: true, .. } => {
                end_group(scan, (&mut run, &mut groups, &mut group), ctx, spans);
            }
            _ => {
                end_group(scan, (&mut run, &mut groups, &mut group), ctx, spans);
                end_run(scan, &mut run, groups, ctx, spans);
                groups = 0;
            }
        }
    }
    end_group(scan, (&mut run, &mut groups, &mut group), ctx, spans);
    end_run(scan, &mut run, groups, ctx, spans);
}

/// Ends the group being read ([`scan_chinese_grouped`]): one more group of the run, or, too long
/// for a card, the end of the run before it (with the group's first 12 characters: a card's last
/// group glued to the text after it) and the start of the next (with its last 12: a first group
/// glued to the text before it).
fn end_group<'a>(
    scan: &Scan<'_>,
    (run, groups, group): (&mut Vec<&'a Item>, &mut usize, &mut Vec<&'a Item>),
    ctx: &mut Context<'_, '_>,
    spans: &mut Vec<SecretSpan>,
) {
    const MAX_GROUP: usize = 12;
    if group.is_empty() {
        return;
    }
    if group.len() > MAX_GROUP {
        if *groups > 0 {
            run.extend_from_slice(&group[..MAX_GROUP]);
            end_run(scan, run, *groups + 1, ctx, spans);
        }
        run.clear();
        run.extend_from_slice(&group[group.len() - MAX_GROUP..]);
        *groups = 1;
    } else {
        run.append(group);
        *groups += 1;
    }
    group.clear();
}

/// Checks a run of two or more groups ([`scan_chinese_grouped`]) and empties it.
fn end_run(
    scan: &Scan<'_>,
    run: &mut Vec<&Item>,
    groups: usize,
    ctx: &mut Context<'_, '_>,
    spans: &mut Vec<SecretSpan>,
) {
    if groups >= 2 && run.len() >= MIN_SEED_WORDS {
        check_contiguous(scan, run, ctx, spans);
    }
    run.clear();
}

/// Every window of a valid length whose characters look random and whose checksum verifies is a
/// candidate; it is taken when it looks random enough on its own (`Strict`) or a seed hint anchors
/// it (right before or after it, or it is the whole message or line). Of overlapping candidates the
/// one with the most evidence of randomness wins ([`random_evidence`]): around a 12-character
/// mnemonic, windows shifted or stretched into the sentence verify now and then (1 in 16 … 256)
/// and must not replace it. A window that starts exactly where a hint before it ends (after its
/// connectors: `助记词是|…`) or ends exactly where a hint after it begins (`…|是我的助记词`) wins
/// over the rest: the hint says where the phrase is.
fn check_contiguous(
    scan: &Scan<'_>,
    segment: &[&Item],
    ctx: &mut Context<'_, '_>,
    spans: &mut Vec<SecretSpan>,
) {
    let text = scan.text();
    let words: Vec<RunWord> = segment
        .iter()
        .map(|i| RunWord {
            range: i.range.clone(),
            idx: match i.kind {
                ItemKind::Cjk(hans, hant) => [hans, hant],
                _ => [None, None],
            },
        })
        .collect();
    let (starts, ends) = anchor_points(text);
    // (window in `words`, evidence of randomness)
    let mut candidates: Vec<(Range<usize>, i32)> = Vec::new();
    for len in MNEMONIC_LENGTHS {
        if len > words.len() {
            continue;
        }
        for start in 0..=words.len() - len {
            let window = &words[start..start + len];
            // The cheap test first: most windows of a sentence fail it.
            let Some(idx) = Script::Chinese
                .languages()
                .iter()
                .find_map(|&(slot, lang)| {
                    let idx = indices(window, slot)?;
                    (looks_random(&idx, Randomness::Anchored) && verifies(lang, &idx))
                        .then_some(idx)
                })
            else {
                continue;
            };
            let range = window[0].range.start..window[len - 1].range.end;
            let alone = looks_random(&idx, Randomness::Strict)
                && stands_out(&words[start.saturating_sub(CONTEXT_CHARS)..start])
                && stands_out(&words[start + len..(start + len + CONTEXT_CHARS).min(words.len())]);
            if alone || anchored(scan, ctx, &range, text) {
                let aligned = starts.contains(&range.start) || ends.contains(&range.end);
                let evidence = random_evidence(&idx) + if aligned { ALIGNED_BONUS } else { 0 };
                candidates.push((start..start + len, evidence));
            }
        }
    }
    candidates.sort_by_key(|(w, evidence)| (std::cmp::Reverse(*evidence), w.start));
    let mut chosen: Vec<Range<usize>> = Vec::new();
    for (w, _) in candidates {
        if !chosen.iter().any(|c| overlaps(c, &w)) {
            spans.extend(span_of(&words[w.clone()], true));
            chosen.push(w);
        }
    }
}

/// The characters next to a window on one side (up to [`CONTEXT_CHARS`], within the same run of
/// ideographs): a mnemonic pasted into a sentence stands out from it, so the text beside it must
/// read as a sentence: it holds a word ("谢谢", "你好") or its characters are common ones
/// ([`random_evidence`] below −0.6 nats a character). Lists of transliterated names
/// (`阿布扎比阿达马瓦省…`) read as random characters all along and are not taken for a mnemonic;
/// a window with no ideograph beside it (punctuation around it) stands out by itself.
fn stands_out(side: &[RunWord]) -> bool {
    if side.len() < 2 {
        return true;
    }
    let idx: Vec<u16> = side.iter().filter_map(|w| w.idx[0].or(w.idx[1])).collect();
    // Characters outside the lists are rarer than any listed one: not what a sentence is made of,
    // nor a mnemonic, so they count as neither.
    idx.len() < 2
        || idx.windows(2).any(|p| is_word_pair(p[0], p[1]))
        || random_evidence(&idx) < -60 * idx.len() as i32
}

const CONTEXT_CHARS: usize = 6;

/// What a window aligned with a hint gains over others (10 nats: more than the evidence that tells
/// the true window from a shifted one).
const ALIGNED_BONUS: i32 = 1_000;

/// Where a phrase right after a seed hint would start (after the hint, its connectors and
/// punctuation), and where one right before a hint would end.
fn anchor_points(text: &str) -> (Vec<usize>, Vec<usize>) {
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    for hint in SEED_HINTS {
        for at in occurrences(text, hint, false) {
            let after = &text[at + hint.len()..];
            let rest = after.trim_start_matches(|c: char| {
                HINT_CONNECTORS.contains(&c) || is_punctuation_or_space(c)
            });
            starts.push(text.len() - rest.len());
            let before = &text[..at];
            let kept = before.trim_end_matches(|c: char| {
                TRAILING_CONNECTORS.contains(&c) || is_punctuation_or_space(c)
            });
            ends.push(kept.len());
        }
    }
    (starts, ends)
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// Does a seed hint point at this range: right before it (`助记词：`, `我的助记词是`), right after it
/// (`…是我的助记词`), or is it the whole message or line, or a value after a colon in a message
/// that mentions a seed?
fn anchored(scan: &Scan<'_>, ctx: &mut Context<'_, '_>, range: &Range<usize>, text: &str) -> bool {
    let before = &text[..range.start];
    let after = &text[range.end..];
    let outside_labels = |at: usize| !scan.in_label(at);
    preceded_by_hint(before) && outside_labels(range.start.saturating_sub(1))
        || followed_by_hint(after) && outside_labels(range.end)
        || only_punctuation_outside(text, range)
        || ctx.seed_hint() && (preceded_by_colon(before) || is_whole_line(text, range))
}

fn is_punctuation_or_space(c: char) -> bool {
    !c.is_alphanumeric() && !is_cjk(c)
}

fn ends_with_hint(s: &str) -> bool {
    let b = s.as_bytes();
    SEED_HINTS
        .iter()
        .any(|h| b.len() >= h.len() && b[b.len() - h.len()..].eq_ignore_ascii_case(h.as_bytes()))
}

/// Does `before` end with a seed hint, possibly followed by connectors and punctuation
/// (`助记词：`, `seed phrase:`, `助记词如下，`)?
fn preceded_by_hint(before: &str) -> bool {
    let mut s = before.trim_end_matches(is_punctuation_or_space);
    for _ in 0..=MAX_CONNECTORS {
        if ends_with_hint(s) {
            return true;
        }
        match s.strip_suffix(|c: char| HINT_CONNECTORS.contains(&c)) {
            Some(rest) => s = rest.trim_end_matches(is_punctuation_or_space),
            None => return false,
        }
    }
    false
}

/// Does `after` start with a seed hint, possibly after a few connectors (`是我的助记词`, `，这是助记词`)?
fn followed_by_hint(after: &str) -> bool {
    let mut s = after.trim_start_matches(is_punctuation_or_space);
    for _ in 0..=MAX_CONNECTORS {
        if SEED_HINTS
            .iter()
            .any(|h| occurrences(s, h, false).next() == Some(0))
        {
            return true;
        }
        match s.strip_prefix(|c: char| TRAILING_CONNECTORS.contains(&c)) {
            Some(rest) => s = rest.trim_start_matches(is_punctuation_or_space),
            None => return false,
        }
    }
    false
}

/// Is the candidate presented as a value (`…：<mnemonic>`)?
fn preceded_by_colon(before: &str) -> bool {
    before.trim_end().ends_with([':', '：'])
}

/// Is the candidate alone on its line (apart from whitespace and punctuation)?
fn is_whole_line(text: &str, range: &Range<usize>) -> bool {
    let line_start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[range.end..]
        .find('\n')
        .map_or(text.len(), |i| range.end + i);
    text[line_start..range.start]
        .chars()
        .all(is_punctuation_or_space)
        && text[range.end..line_end]
            .chars()
            .all(is_punctuation_or_space)
}

/// Is `text` nothing but `range` plus whitespace and punctuation?
fn only_punctuation_outside(text: &str, range: &Range<usize>) -> bool {
    text[..range.start].chars().all(is_punctuation_or_space)
        && text[range.end..].chars().all(is_punctuation_or_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_words_are_all_in_the_wordlist() {
        assert!(
            PROSE_WORDS
                .iter()
                .all(|w| super::super::wordlists::en_index(w).is_some())
        );
    }

    #[test]
    fn hints_before_and_after_are_recognised() {
        assert!(preceded_by_hint("我的助记词是"));
        assert!(preceded_by_hint("助记词如下，"));
        assert!(preceded_by_hint("seed phrase: "));
        assert!(!preceded_by_hint("你好，"));
        assert!(followed_by_hint("是我的助记词"));
        assert!(followed_by_hint("，这是助记词吗"));
        assert!(!followed_by_hint("请帮我看看"));
    }
}
