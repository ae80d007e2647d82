//! The JSON Schema of the spec file, generated from [`super::types::SpecFile`].
//!
//! Editors use it through the `# yaml-language-server: $schema=…` comment at the top of a spec.
//! The committed copy lives in `schemas/tokensmith.schema.json`; `tokensmith schema --check`
//! and a test compare it with this output.

use super::types::SpecFile;

/// Where the committed copy of the schema lives, relative to the repository root.
pub const SCHEMA_PATH: &str = "schemas/tokensmith.schema.json";

/// The schema as pretty-printed JSON with a trailing newline.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(SpecFile);
    let mut text = serde_json::to_string_pretty(&schema).expect("a JSON Schema serializes");
    text.push('\n');
    text
}
