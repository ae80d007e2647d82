//! The sidecar file `<path>.tokensmith` that records which token a `raw` or `json` file holds,
//! since those formats have no room for a comment. It is JSON, holds no secret, and maps the
//! target's key (`(file)` for `raw`) to its record:
//!
//! ```json
//! {"format_version": 1, "records": {"auth.token": "dt0c01.ST2EY72KQINMH574WMNVI7YN until 2026-12-01T10:00:00Z"}}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::deliver::record::{Parsed, Record};

/// The sidecar's key for a `raw` file (which has no key).
pub const RAW_KEY: &str = "(file)";

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Sidecar {
    format_version: u32,
    #[serde(default)]
    records: BTreeMap<String, String>,
}

/// Where the sidecar of `path` lives.
pub fn path_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".tokensmith");
    PathBuf::from(name)
}

impl Sidecar {
    /// Parse a sidecar's text; `None` text is an absent sidecar.
    pub fn parse(text: Option<&str>) -> Result<Sidecar, String> {
        match text {
            None => Ok(Sidecar {
                format_version: FORMAT_VERSION,
                records: BTreeMap::new(),
            }),
            Some(text) => {
                let sidecar: Sidecar = serde_json::from_str(text)
                    .map_err(|e| format!("the sidecar is not valid: {e}"))?;
                if sidecar.format_version != FORMAT_VERSION {
                    return Err(format!(
                        "the sidecar has format_version {}; this tokensmith understands {FORMAT_VERSION}",
                        sidecar.format_version
                    ));
                }
                Ok(sidecar)
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<Parsed> {
        self.records.get(key).and_then(|r| Record::decode(r))
    }

    /// Set `key`'s record; returns whether it changed.
    pub fn set(&mut self, key: &str, record: &Record) -> bool {
        let encoded = record.encode();
        if self.records.get(key) == Some(&encoded) {
            return false;
        }
        self.records.insert(key.to_owned(), encoded);
        true
    }

    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}
