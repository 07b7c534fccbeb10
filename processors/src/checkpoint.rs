//! A task's checkpoint: everything one batch decided, written to the store before the batch's
//! Kafka transaction commits, so that a crash at any point can finish the batch instead of
//! deciding it again.

use crate::store::RowWrite;

/// A record a batch appends, with its partition chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRecord {
    /// Logical topic name (without the cluster prefix).
    pub topic: String,
    pub partition: u32,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// One decided batch of one task (a partition number of every input topic).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checkpoint {
    /// The batch's id and the write time of its rows (micros, increasing per task).
    pub id: i64,
    /// Next offsets of the input partitions: (logical topic, partition, next offset).
    pub offsets: Vec<(String, u32, u64)>,
    pub writes: Vec<RowWrite>,
    pub records: Vec<OutRecord>,
}

const VERSION: u8 = 1;

impl Checkpoint {
    /// A compact length-prefixed binary form (values are already bytes; JSON would triple them).
    pub fn encode(&self) -> Vec<u8> {
        let size = self
            .writes
            .iter()
            .map(|w| w.key.len() + w.table.len() + w.value.as_ref().map_or(0, Vec::len) + 16)
            .sum::<usize>()
            + self
                .records
                .iter()
                .map(|r| r.key.len() + r.value.len() + r.topic.len() + 64)
                .sum::<usize>()
            + 64;
        let mut out = Vec::with_capacity(size);
        out.push(VERSION);
        out.extend_from_slice(&self.id.to_be_bytes());
        put_len(&mut out, self.offsets.len());
        for (topic, partition, next) in &self.offsets {
            put_bytes(&mut out, topic.as_bytes());
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&next.to_be_bytes());
        }
        put_len(&mut out, self.writes.len());
        for w in &self.writes {
            put_bytes(&mut out, w.table.as_bytes());
            put_bytes(&mut out, w.key.as_bytes());
            match &w.value {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    put_bytes(&mut out, v);
                }
            }
        }
        put_len(&mut out, self.records.len());
        for r in &self.records {
            put_bytes(&mut out, r.topic.as_bytes());
            out.extend_from_slice(&r.partition.to_be_bytes());
            put_bytes(&mut out, &r.key);
            put_bytes(&mut out, &r.value);
            put_len(&mut out, r.headers.len());
            for (k, v) in &r.headers {
                put_bytes(&mut out, k.as_bytes());
                put_bytes(&mut out, v);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.u8()?;
        if version != VERSION {
            return Err(format!("checkpoint version {version} is not {VERSION}"));
        }
        let id = r.i64()?;
        let mut cp = Checkpoint {
            id,
            ..Default::default()
        };
        for _ in 0..r.u32()? {
            let topic = r.string()?;
            let partition = r.u32()?;
            let next = r.i64()? as u64;
            cp.offsets.push((topic, partition, next));
        }
        for _ in 0..r.u32()? {
            let table = r.string()?;
            let key = r.string()?;
            let value = match r.u8()? {
                0 => None,
                _ => Some(r.bytes()?.to_vec()),
            };
            cp.writes.push(RowWrite { table, key, value });
        }
        for _ in 0..r.u32()? {
            let topic = r.string()?;
            let partition = r.u32()?;
            let key = r.bytes()?.to_vec();
            let value = r.bytes()?.to_vec();
            let mut headers = Vec::new();
            for _ in 0..r.u32()? {
                let k = r.string()?;
                headers.push((k, r.bytes()?.to_vec()));
            }
            cp.records.push(OutRecord {
                topic,
                partition,
                key,
                value,
                headers,
            });
        }
        if r.at != bytes.len() {
            return Err("trailing bytes after checkpoint".into());
        }
        Ok(cp)
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or("checkpoint is truncated")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_refuses_truncation() {
        let cp = Checkpoint {
            id: 1_700_000_000_000_001,
            offsets: vec![("product.commands".into(), 3, 42)],
            writes: vec![
                RowWrite {
                    table: "product".into(),
                    key: "acme/p1".into(),
                    value: Some(b"{\"v\":1}".to_vec()),
                },
                RowWrite {
                    table: "activation_deadline".into(),
                    key: "00000000000000000001/acme/p1".into(),
                    value: None,
                },
            ],
            records: vec![OutRecord {
                topic: "product.events".into(),
                partition: 3,
                key: b"acme/p1".to_vec(),
                value: vec![0, 0, 0, 0, 7, 1, 2, 3],
                headers: vec![("correlation_id".into(), b"c-1".to_vec())],
            }],
        };
        let bytes = cp.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), cp);
        for cut in [0, 1, 9, bytes.len() - 1] {
            assert!(Checkpoint::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Checkpoint::decode(&longer).is_err());
    }
}
