//! How entries are written in Redis: a history item is
//! `{seq}\t{resource}\t{frame}`, and a feed message is the family's epoch
//! (hex), a newline, then each published item as `{len}:{item}`.
//!
//! Sequence numbers and resource ids never contain a tab, so the frame (which
//! may) is everything after the second one. The encoding side is the Lua
//! publish script; this module only decodes, and checks what it decodes.

use bytes::Bytes;
use logs_sse_protocol::{Channel, Cursor, Epoch};

use crate::backend::entry::{StoreError, StoredEntry};

fn bad(what: &str) -> StoreError {
    StoreError::Protocol(format!("malformed {what} in Redis"))
}

/// Parses a family epoch as stored (`meta.epoch`).
pub fn parse_epoch(text: &[u8]) -> Result<Epoch, StoreError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| u64::from_str_radix(t, 16).ok())
        .map(Epoch)
        .ok_or_else(|| bad("epoch"))
}

/// The sequence number of a history item, without decoding the rest.
pub fn item_seq(item: &[u8]) -> Result<u64, StoreError> {
    let end = item
        .iter()
        .position(|b| *b == b'\t')
        .ok_or_else(|| bad("history item"))?;
    std::str::from_utf8(&item[..end])
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad("history item"))
}

/// Decodes one history item of `family` (its service-level channel).
pub fn decode_item(family: &Channel, epoch: Epoch, item: &[u8]) -> Result<StoredEntry, StoreError> {
    let seq = item_seq(item)?;
    let rest = &item[seq_len(item)..];
    let end = rest
        .iter()
        .position(|b| *b == b'\t')
        .ok_or_else(|| bad("history item"))?;
    let resource = std::str::from_utf8(&rest[..end]).map_err(|_| bad("history item"))?;
    let channel = Channel::new(family.service(), family.workspace(), Some(resource))
        .map_err(|_| bad("history item channel"))?;
    Ok(StoredEntry {
        cursor: Cursor::new(epoch, seq),
        channel,
        frame: Bytes::copy_from_slice(&rest[end + 1..]),
    })
}

/// Length of `{seq}\t`.
fn seq_len(item: &[u8]) -> usize {
    item.iter().position(|b| *b == b'\t').map_or(0, |i| i + 1)
}

/// Decodes a feed message: the family's epoch and its entries in order.
pub fn decode_message(
    family: &Channel,
    message: &[u8],
) -> Result<(Epoch, Vec<StoredEntry>), StoreError> {
    let newline = message
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| bad("feed message"))?;
    let epoch = parse_epoch(&message[..newline])?;
    let mut rest = &message[newline + 1..];
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let colon = rest
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(|| bad("feed message"))?;
        let len: usize = std::str::from_utf8(&rest[..colon])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad("feed message"))?;
        let body = rest
            .get(colon + 1..colon + 1 + len)
            .ok_or_else(|| bad("feed message"))?;
        entries.push(decode_item(family, epoch, body)?);
        rest = &rest[colon + 1 + len..];
    }
    Ok((epoch, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_message_decodes_to_its_entries_and_garbage_is_an_error() {
        let family: Channel = "logs:etl:ws1".parse().unwrap();
        let a = "7\twf1\tevent: log\ndata: {\"x\":\"\t\"}\n\n";
        let b = "8\twf2\tframe";
        let message = format!("ab\n{}:{a}{}:{b}", a.len(), b.len());
        let (epoch, entries) = decode_message(&family, message.as_bytes()).unwrap();
        assert_eq!(epoch, Epoch(0xab));
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].cursor, Cursor::new(Epoch(0xab), 7));
        assert_eq!(entries[0].channel.as_str(), "logs:etl:ws1:wf1");
        assert_eq!(&entries[0].frame[..], &a.as_bytes()["7\twf1\t".len()..]);
        assert_eq!(entries[1].channel.as_str(), "logs:etl:ws1:wf2");
        for garbage in [
            "",
            "ab",
            "zz\n1:x",
            "ab\n99:short",
            "ab\n5:x\ty\tz",
            "ab\n3:1\t!",
        ] {
            assert!(
                decode_message(&family, garbage.as_bytes()).is_err(),
                "{garbage:?}"
            );
        }
    }
}
