//! A phrase split over consecutive messages ("my seed phrase is w1 … w6", then "w7 … w12"): each
//! part alone is too short to be a seed, read together they are one.

use std::ops::Range;

use super::text::is_cjk;
use super::{SecretSpan, find_secrets, merge, mnemonic_words_in, scan_repeated};

/// What [`find_secrets_with_history`] found, as spans in each message's own bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryScan {
    /// Secrets in the new message: found in it alone, or parts of a secret that starts in the
    /// history. Sorted, non-overlapping.
    pub current: Vec<SecretSpan>,
    /// `history[i]` holds the parts of split secrets that lie in the `i`-th message of the history
    /// (empty when none). Sorted, non-overlapping.
    pub history: Vec<Vec<SecretSpan>>,
}

/// `history`: the conversation's previous user messages, oldest first (the service passes the last
/// few, within a few minutes). Finds secrets in `text` alone AND secrets that only appear when the
/// end of the history and `text` are read as one (a phrase split over messages). Spans are in each
/// text's own bytes.
///
/// The messages are joined with line breaks (a message boundary reads like a new line; a seed
/// typed one word per message is "one word per line"). When the last message ends with an
/// ideograph and the new one starts with one, they are also read glued together, for a contiguous
/// Chinese mnemonic cut in two. Only secrets that reach into `text` and into at least one earlier
/// message are taken from the joined reading: each earlier message was scanned (with its own
/// history) when it arrived. A split secret's part is labelled with the words it holds.
pub fn find_secrets_with_history(history: &[&str], text: &str) -> HistoryScan {
    let mut current = find_secrets(text);
    let mut parts: Vec<Vec<SecretSpan>> = vec![Vec::new(); history.len()];
    if !history.is_empty() {
        let mut joins = vec!["\n"];
        let glued = history
            .last()
            .and_then(|h| h.chars().next_back())
            .is_some_and(is_cjk)
            && text.chars().next().is_some_and(is_cjk);
        if glued {
            joins.push("");
        }
        for join in joins {
            let (joined, pieces) = join_messages(history, text, join);
            let Some(current_piece) = pieces.last().cloned() else {
                continue;
            };
            for span in scan_repeated(&joined) {
                let reaches_current = overlaps(&span.range, &current_piece);
                let reaches_history = pieces[..history.len()]
                    .iter()
                    .any(|p| overlaps(&span.range, p));
                if !(reaches_current && reaches_history) {
                    continue;
                }
                for (i, piece) in pieces.iter().enumerate() {
                    let Some(local) = intersect(&span.range, piece) else {
                        continue;
                    };
                    let message = if i < history.len() { history[i] } else { text };
                    let part = SecretSpan {
                        kind: span.kind,
                        words: if span.words > 1 {
                            mnemonic_words_in(&message[local.clone()]).max(1)
                        } else {
                            1
                        },
                        range: local,
                        checksum_ok: span.checksum_ok,
                    };
                    match parts.get_mut(i) {
                        Some(slot) => slot.push(part),
                        None => current.push(part),
                    }
                }
            }
        }
    }
    HistoryScan {
        current: merge(current),
        history: parts.into_iter().map(merge).collect(),
    }
}

/// The messages joined by `join`, and each message's byte range in the joined text.
fn join_messages(history: &[&str], text: &str, join: &str) -> (String, Vec<Range<usize>>) {
    let total = history.iter().map(|h| h.len() + join.len()).sum::<usize>() + text.len();
    let mut joined = String::with_capacity(total);
    let mut pieces = Vec::with_capacity(history.len() + 1);
    for message in history.iter().chain(std::iter::once(&text)) {
        if !pieces.is_empty() {
            joined.push_str(join);
        }
        let start = joined.len();
        joined.push_str(message);
        pieces.push(start..joined.len());
    }
    (joined, pieces)
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// `span ∩ piece`, in the piece's own offsets.
fn intersect(span: &Range<usize>, piece: &Range<usize>) -> Option<Range<usize>> {
    let start = span.start.max(piece.start);
    let end = span.end.min(piece.end);
    (start < end).then(|| start - piece.start..end - piece.start)
}
