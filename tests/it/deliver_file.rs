//! `file` targets: byte-for-byte updates of realistic config files, atomic writes with the right
//! modes, records read back as holders, verification, and no secret outside the value itself.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use time::macros::datetime;
use tokensmith::deliver::{
    read_all, DeliverError, Deliverer, DeliveryContext, KubeSettings, Record, Verified,
};
use tokensmith::model::target::tenant_fingerprint;
use tokensmith::model::{FileFormat, FileTarget, Holder, Secret, Target, TokenId};

const SECRET: &str = "dt0c01.NEWPUBLIC2345ABCDEFGHIJKL.NEWSECRETPART234567ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQ";
const SECRET_PART: &str = "NEWSECRETPART234567";
const ID: &str = "dt0c01.NEWPUBLIC2345ABCDEFGHIJKL";
const TENANT: &str = "NEWTENANTtoken4567opaque";

fn fixture(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/deliver")
            .join(name),
    )
    .unwrap()
}

fn deliverer(dir: &Path) -> Deliverer {
    Deliverer::new(DeliveryContext::with_kube(dir, KubeSettings::default()))
}

fn file(path: &str, format: FileFormat, key: Option<&str>, section: Option<&str>) -> Target {
    Target::File(FileTarget {
        path: path.to_owned(),
        format,
        key: key.map(str::to_owned),
        section: section.map(str::to_owned),
        mode: "0600".to_owned(),
        restart: None,
    })
}

fn token_record() -> Record {
    Record::token(TokenId::new(ID), None)
}

fn tenant_record() -> Record {
    Record::Tenant {
        fingerprint: tenant_fingerprint(TENANT),
        at: datetime!(2026-11-22 10:00 UTC),
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Nothing but the value itself may contain the secret.
fn assert_secret_free(text: &str) {
    assert!(!text.contains(SECRET_PART), "secret leaked: {text}");
    assert!(!text.contains(TENANT), "tenant token leaked: {text}");
}

#[tokio::test]
async fn authorization_properties_updates_one_section_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let original = fixture("authorization.properties");
    fs::write(dir.path().join("authorization.properties"), &original).unwrap();
    fs::set_permissions(
        dir.path().join("authorization.properties"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let d = deliverer(dir.path());
    let tenant = file(
        "authorization.properties",
        FileFormat::Properties,
        Some("tenantToken"),
        Some("abc12345"),
    );
    let auth = file(
        "authorization.properties",
        FileFormat::Properties,
        Some("authToken"),
        Some("abc12345"),
    );

    let out = d
        .deliver(&tenant, &Secret::from(TENANT), &tenant_record())
        .await
        .unwrap();
    assert!(out.changed);
    d.deliver(&auth, &Secret::from(SECRET), &token_record())
        .await
        .unwrap();

    let expected = original
        .replace(
            "tenantToken = ABCDEFGHijklmnop\n",
            &format!("# tokensmith: holds tenant:{} since 2026-11-22T10:00:00Z\ntenantToken = {TENANT}\n", tenant_fingerprint(TENANT)),
        )
        .replace(
            "authToken = dt0g02.OLDAGTOKEN.OLDAGSECRETPART00000000000000000000000000000000000000000000000000\n",
            &format!("# tokensmith: holds {ID}\nauthToken = {SECRET}\n"),
        );
    let written = fs::read_to_string(dir.path().join("authorization.properties")).unwrap();
    assert_eq!(written, expected);
    // The other environment's section is untouched; the existing 0640 is tightened to the
    // target's default 0600 (issue 10: a token file is not left group-readable silently).
    assert!(written.ends_with("[6a1c1a9e-4c21-4d0d-9a3e-1e0d3f2b7c11]\nmainTenant = false\ntenantToken=QRSTUVWXyz012345\n"));
    assert_eq!(mode(&dir.path().join("authorization.properties")), 0o600);

    assert_eq!(
        d.read_holder(&tenant).await,
        Holder::TenantToken {
            fingerprint: tenant_fingerprint(TENANT),
            since: Some(datetime!(2026-11-22 10:00 UTC))
        }
    );
    assert_eq!(
        d.read_holder(&auth).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );
    assert!(matches!(
        d.verify(&auth, &token_record()).await,
        Ok(Verified::ReadBack(_))
    ));
    assert!(matches!(
        d.verify(&tenant, &tenant_record()).await,
        Ok(Verified::ReadBack(_))
    ));

    // Delivering again changes nothing on disk.
    let again = d
        .deliver(&auth, &Secret::from(SECRET), &token_record())
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(
        fs::read_to_string(dir.path().join("authorization.properties")).unwrap(),
        expected
    );

    // Without `section`, a key present in several sections is ambiguous.
    let ambiguous = file(
        "authorization.properties",
        FileFormat::Properties,
        Some("tenantToken"),
        None,
    );
    let err = d
        .deliver(&ambiguous, &Secret::from(TENANT), &tenant_record())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("set `section`"), "{err}");
    assert_secret_free(&err.to_string());
}

#[tokio::test]
async fn ruxitagent_conf_keeps_whitespace_separators() {
    let dir = tempfile::tempdir().unwrap();
    let original = fixture("ruxitagent.conf");
    fs::write(dir.path().join("ruxitagent.conf"), &original).unwrap();
    let d = deliverer(dir.path());
    let t = file(
        "ruxitagent.conf",
        FileFormat::Properties,
        Some("tenantToken"),
        Some("general"),
    );
    d.deliver(&t, &Secret::from(TENANT), &tenant_record())
        .await
        .unwrap();
    let expected = original.replace(
        "tenantToken   ABCDEFGHijklmnop\n",
        &format!(
            "# tokensmith: holds tenant:{} since 2026-11-22T10:00:00Z\ntenantToken   {TENANT}\n",
            tenant_fingerprint(TENANT)
        ),
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("ruxitagent.conf")).unwrap(),
        expected
    );
}

#[tokio::test]
async fn env_files_keep_comments_quotes_and_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());

    let original = fixture("app.env");
    fs::write(dir.path().join("app.env"), &original).unwrap();
    let t = file("app.env", FileFormat::Env, Some("DT_API_TOKEN"), None);
    d.deliver(&t, &Secret::from(SECRET), &token_record())
        .await
        .unwrap();
    let expected = original.replace(
        "DT_API_TOKEN=dt0c01.OLDPUBLIC.OLDSECRETPART\n",
        &format!("# tokensmith: holds {ID}\nDT_API_TOKEN={SECRET}\n"),
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("app.env")).unwrap(),
        expected
    );

    // CRLF, `export`, double quotes and an inline comment.
    let original = fixture("forwarder.env");
    fs::write(dir.path().join("forwarder.env"), &original).unwrap();
    let t = file("forwarder.env", FileFormat::Env, Some("DT_API_TOKEN"), None);
    d.deliver(&t, &Secret::from(SECRET), &token_record())
        .await
        .unwrap();
    let expected = original.replace(
        "export DT_API_TOKEN=\"dt0c01.OLDPUBLIC.OLDSECRETPART\" # ingest token\r\n",
        &format!("# tokensmith: holds {ID}\r\nexport DT_API_TOKEN=\"{SECRET}\" # ingest token\r\n"),
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("forwarder.env")).unwrap(),
        expected
    );
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );

    // A missing key is appended; a missing file is created with mode 0600.
    let t = file("app.env", FileFormat::Env, Some("DT_PAAS_TOKEN"), None);
    d.deliver(&t, &Secret::from(SECRET), &token_record())
        .await
        .unwrap();
    assert!(fs::read_to_string(dir.path().join("app.env"))
        .unwrap()
        .ends_with(&format!("QUOTED='single quoted # not a comment'\n# tokensmith: holds {ID}\nDT_PAAS_TOKEN={SECRET}\n")));
    let t = file("sub/new.env", FileFormat::Env, Some("TOKEN"), None);
    fs::create_dir(dir.path().join("sub")).unwrap();
    d.deliver(&t, &Secret::from(SECRET), &token_record())
        .await
        .unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("sub/new.env")).unwrap(),
        format!("# tokensmith: holds {ID}\nTOKEN={SECRET}\n")
    );
    assert_eq!(mode(&dir.path().join("sub/new.env")), 0o600);
}

#[tokio::test]
async fn json_splices_the_value_and_records_in_a_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let original = fixture("collector.json");
    fs::write(dir.path().join("collector.json"), &original).unwrap();
    let d = deliverer(dir.path());
    let t = file(
        "collector.json",
        FileFormat::Json,
        Some("dynatrace.apiToken"),
        None,
    );
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new("dt0c01.OLDPUBLIC"),
            expires: None,
        }
    );

    d.deliver(&t, &Secret::from(SECRET), &token_record())
        .await
        .unwrap();
    let expected = original.replacen(
        "\"dt0c01.OLDPUBLIC.OLDSECRETPART\"",
        &format!("\"{SECRET}\""),
        1,
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("collector.json")).unwrap(),
        expected
    );
    let sidecar = fs::read_to_string(dir.path().join("collector.json.tokensmith")).unwrap();
    assert_secret_free(&sidecar);
    assert!(
        sidecar.contains(&format!("\"dynatrace.apiToken\": \"{ID}\"")),
        "{sidecar}"
    );
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );
    assert!(d.verify(&t, &token_record()).await.is_ok());

    // Keys are never created in json files, and non-strings are not overwritten.
    let missing = file(
        "collector.json",
        FileFormat::Json,
        Some("dynatrace.nope"),
        None,
    );
    let err = d
        .deliver(&missing, &Secret::from(SECRET), &token_record())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("placeholder"), "{err}");
    assert_secret_free(&err.to_string());
    let number = file(
        "collector.json",
        FileFormat::Json,
        Some("dynatrace.retries"),
        None,
    );
    let err = d
        .deliver(&number, &Secret::from(SECRET), &token_record())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a number"), "{err}");
}

#[tokio::test]
async fn yaml_splices_the_scalar_and_comments_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let original = fixture("collector.yaml");
    fs::write(dir.path().join("collector.yaml"), &original).unwrap();
    let d = deliverer(dir.path());
    let t = file(
        "collector.yaml",
        FileFormat::Yaml,
        Some("dynatrace.apiToken"),
        None,
    );
    d.deliver(&t, &Secret::from(SECRET), &token_record())
        .await
        .unwrap();
    let expected = original.replace(
        "  apiToken: 'dt0c01.OLDPUBLIC.OLDSECRETPART'  # rotated by tokensmith\n",
        &format!("  # tokensmith: holds {ID}\n  apiToken: '{SECRET}'  # rotated by tokensmith\n"),
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("collector.yaml")).unwrap(),
        expected
    );
    assert_eq!(
        d.read_holder(&t).await,
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );
    assert!(d.verify(&t, &token_record()).await.is_ok());

    // A later rotation replaces the record instead of adding one.
    let next = "dt0c01.NEXTPUBLIC234ABCDEFGHIJKL.NEXTSECRET";
    d.deliver(
        &t,
        &Secret::from(next),
        &Record::token(TokenId::new("dt0c01.NEXTPUBLIC234ABCDEFGHIJKL"), None),
    )
    .await
    .unwrap();
    let written = fs::read_to_string(dir.path().join("collector.yaml")).unwrap();
    assert_eq!(written.matches("# tokensmith: holds").count(), 1);
    assert_eq!(
        written,
        expected
            .replace(SECRET, next)
            .replace(ID, "dt0c01.NEXTPUBLIC234ABCDEFGHIJKL")
    );

    let seq = file(
        "collector.yaml",
        FileFormat::Yaml,
        Some("list.apiToken"),
        None,
    );
    assert!(d
        .deliver(&seq, &Secret::from(SECRET), &token_record())
        .await
        .is_err());
}

#[tokio::test]
async fn raw_files_hold_only_the_value_with_a_sidecar_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    let t = file("tenant-token", FileFormat::Raw, None, None);
    assert_eq!(d.read_holder(&t).await, Holder::Absent);
    d.deliver(&t, &Secret::from(TENANT), &tenant_record())
        .await
        .unwrap();
    assert_eq!(
        fs::read(dir.path().join("tenant-token")).unwrap(),
        TENANT.as_bytes()
    );
    assert_eq!(mode(&dir.path().join("tenant-token")), 0o600);
    assert_secret_free(&fs::read_to_string(dir.path().join("tenant-token.tokensmith")).unwrap());
    assert_eq!(d.read_holder(&t).await, tenant_record().holder());

    // A symlinked file is replaced through the link; the link stays.
    fs::write(dir.path().join("real"), "old").unwrap();
    fs::set_permissions(dir.path().join("real"), fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    let link = file("link", FileFormat::Raw, None, None);
    d.deliver(&link, &Secret::from(SECRET), &token_record())
        .await
        .unwrap();
    assert!(fs::symlink_metadata(dir.path().join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_to_string(dir.path().join("real")).unwrap(), SECRET);
    // The world-readable file is tightened to the target's default mode.
    assert_eq!(mode(&dir.path().join("real")), 0o600);

    // A hand edit to another token is what read-back reports; verify fails without the secret.
    fs::write(dir.path().join("real"), "dt0c01.HANDEDITED.SECRETX").unwrap();
    assert_eq!(
        d.read_holder(&link).await,
        Holder::Token {
            id: TokenId::new("dt0c01.HANDEDITED"),
            expires: None,
        }
    );
    let err = d.verify(&link, &token_record()).await.unwrap_err();
    assert!(matches!(err, DeliverError::Mismatch { .. }));
    assert!(err.to_string().contains("dt0c01.HANDEDITED"), "{err}");
    assert!(!err.to_string().contains("SECRETX"), "{err}");
}

#[tokio::test]
async fn bad_values_and_lying_records_are_refused_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    let t = file("x", FileFormat::Raw, None, None);
    let err = d
        .deliver(&t, &Secret::from(format!("{SECRET}\n")), &token_record())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("whitespace"), "{err}");
    assert_secret_free(&err.to_string());
    let other = Record::token(TokenId::new("dt0c01.SOMEONEELSE"), None);
    let err = d
        .deliver(&t, &Secret::from(SECRET), &other)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("dt0c01.SOMEONEELSE"), "{err}");
    assert_secret_free(&err.to_string());
    assert!(!dir.path().join("x").exists());
    let bad_mode = Target::File(FileTarget {
        mode: "rw-------".into(),
        ..match file("y", FileFormat::Raw, None, None) {
            Target::File(f) => f,
            _ => unreachable!(),
        }
    });
    let err = d
        .deliver(&bad_mode, &Secret::from(SECRET), &token_record())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("octal"), "{err}");
}

#[tokio::test]
async fn concurrent_deliveries_to_one_file_keep_both_keys_and_read_all_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("multi.env"), "A=old\nB=old\n").unwrap();
    let d = deliverer(dir.path());
    let a = file("multi.env", FileFormat::Env, Some("A"), None);
    let b = file("multi.env", FileFormat::Env, Some("B"), None);
    let second = "dt0c01.SECONDPUBLIC.SECONDSECRETPART";
    let rec_b = Record::token(TokenId::new("dt0c01.SECONDPUBLIC"), None);
    let (sa, sb) = (Secret::from(SECRET), Secret::from(second));
    let rec_a = token_record();
    let (ra, rb) = tokio::join!(d.deliver(&a, &sa, &rec_a), d.deliver(&b, &sb, &rec_b));
    ra.unwrap();
    rb.unwrap();
    let missing = file("missing.env", FileFormat::Env, Some("A"), None);
    let broken = file("multi.env", FileFormat::Json, Some("C"), None);
    let targets = vec![a.clone(), b.clone(), missing.clone(), broken.clone()];
    let snapshot = read_all(&d, &targets, 2).await;
    assert_eq!(
        snapshot.holders[&a.address()],
        Holder::Token {
            id: TokenId::new(ID),
            expires: None,
        }
    );
    assert_eq!(
        snapshot.holders[&b.address()],
        Holder::Token {
            id: TokenId::new("dt0c01.SECONDPUBLIC"),
            expires: None,
        }
    );
    assert_eq!(snapshot.holders[&missing.address()], Holder::Absent);
    assert!(matches!(
        snapshot.holders[&broken.address()],
        Holder::Unreadable { .. }
    ));
    let json = serde_json::to_string(&snapshot.holders.values().collect::<Vec<_>>()).unwrap();
    assert!(!json.contains("SECONDSECRETPART"));
    assert_secret_free(&json);
}

mod preservation {
    //! For random line-based files, an update changes exactly the key's value and adds one record
    //! line; every other byte stays.

    use proptest::prelude::*;
    use tokensmith::deliver::file::lines::{read, write, Dialect};
    use tokensmith::deliver::Record;
    use tokensmith::model::TokenId;

    fn other_line(dialect: Dialect) -> BoxedStrategy<String> {
        let sep = prop_oneof![Just("="), Just(" = "), Just(": "), Just(" "), Just("\t=\t")];
        match dialect {
            Dialect::Properties => prop_oneof![
                "# [a-z ]{0,12}".prop_map(|s| s),
                "! [a-z]{0,8}".prop_map(|s| s),
                Just(String::new()),
                Just("   ".to_owned()),
                (" {0,2}", "k[0-9]{1,2}", sep, "[A-Za-z0-9.:/]{0,12}")
                    .prop_map(|(i, k, s, v)| format!("{i}{k}{s}{v}")),
            ]
            .boxed(),
            Dialect::Env => prop_oneof![
                "# [a-z =]{0,12}".prop_map(|s| s),
                Just(String::new()),
                (
                    "(export )?",
                    "K[0-9]{1,2}",
                    "[A-Za-z0-9.:/]{0,12}",
                    "( # [a-z]{1,5})?"
                )
                    .prop_map(|(e, k, v, c)| format!("{e}K{k}={v}{c}")),
                ("K[0-9]{1,2}", "[a-z ]{0,8}").prop_map(|(k, v)| format!("{k}=\"{v}\"")),
            ]
            .boxed(),
        }
    }

    /// (target line before, target line after) for the dialect.
    fn target_line(dialect: Dialect) -> BoxedStrategy<(String, String)> {
        const NEW: &str = "dt0c01.NEW.VALUE";
        match dialect {
            Dialect::Properties => (
                " {0,2}",
                prop_oneof![Just("="), Just(" = "), Just(": "), Just("   ")],
                "[A-Za-z0-9]{0,10}",
            )
                .prop_map(|(i, s, v)| {
                    (
                        format!("{i}tenantToken{s}{v}"),
                        format!("{i}tenantToken{s}{NEW}"),
                    )
                })
                .boxed(),
            Dialect::Env => (
                "(export )?",
                "[A-Za-z0-9]{0,10}",
                prop_oneof![Just(0), Just(1), Just(2)],
                "( # [a-z]{1,5})?",
            )
                .prop_map(|(e, v, q, c)| match q {
                    0 => (
                        format!("{e}tenantToken={v}{c}"),
                        format!("{e}tenantToken={NEW}{c}"),
                    ),
                    1 => (
                        format!("{e}tenantToken=\"{v}\"{c}"),
                        format!("{e}tenantToken=\"{NEW}\"{c}"),
                    ),
                    _ => (
                        format!("{e}tenantToken='{v}'{c}"),
                        format!("{e}tenantToken='{NEW}'{c}"),
                    ),
                })
                .boxed(),
        }
    }

    fn case(
        dialect: Dialect,
    ) -> impl Strategy<Value = (Vec<String>, usize, (String, String), &'static str, bool)> {
        (
            proptest::collection::vec(other_line(dialect), 0..12),
            any::<prop::sample::Index>(),
            target_line(dialect),
            prop_oneof![Just("\n"), Just("\r\n")],
            any::<bool>(),
        )
            .prop_map(|(lines, at, target, eol, final_eol)| {
                let at = at.index(lines.len() + 1);
                (lines, at, target, eol, final_eol)
            })
    }

    fn join(lines: &[String], eol: &str, final_eol: bool) -> String {
        let mut s = lines.join(eol);
        if final_eol {
            s.push_str(eol);
        }
        s
    }

    fn check(
        dialect: Dialect,
        others: Vec<String>,
        at: usize,
        (before, after): (String, String),
        eol: &str,
        final_eol: bool,
    ) -> Result<(), TestCaseError> {
        let mut input = others.clone();
        input.insert(at, before);
        let mut expected = others;
        expected.insert(at, after);
        let input = join(&input, eol, final_eol);
        let expected = join(&expected, eol, final_eol);
        let record = Record::token(TokenId::new("dt0c01.NEW"), None);
        let out = write(
            Some(&input),
            dialect,
            "tenantToken",
            None,
            "dt0c01.NEW.VALUE",
            &record,
        )
        .unwrap();
        // The file's line ending, when it has one; a one-line file without one gets `\n`.
        let eol = if input.contains("\r\n") { "\r\n" } else { "\n" };
        prop_assert_eq!(
            out.matches("# tokensmith: holds dt0c01.NEW").count(),
            1,
            "{:?}",
            out
        );
        let at = out.find("# tokensmith: holds dt0c01.NEW").unwrap();
        let start = out[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = at + out[at..].find(eol).unwrap() + eol.len();
        prop_assert!(out[start..at].chars().all(|c| c == ' '), "{:?}", out);
        let without_record = format!("{}{}", &out[..start], &out[end..]);
        prop_assert_eq!(without_record, expected);
        let found = read(&out, dialect, "tenantToken", None).unwrap().unwrap();
        prop_assert_eq!(found.value, "dt0c01.NEW.VALUE");
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn properties_updates_touch_only_the_value((others, at, target, eol, final_eol) in case(Dialect::Properties)) {
            check(Dialect::Properties, others, at, target, eol, final_eol)?;
        }

        #[test]
        fn env_updates_touch_only_the_value((others, at, target, eol, final_eol) in case(Dialect::Env)) {
            check(Dialect::Env, others, at, target, eol, final_eol)?;
        }
    }
}

mod json_preservation {
    //! For random JSON documents in compact or pretty layout, updating `a.t` changes no byte
    //! outside the old string literal, and nothing else in the document.

    use proptest::prelude::*;
    use serde_json::{json, Map, Value};
    use tokensmith::deliver::file::json::{read, write};

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            (-1e6f64..1e6).prop_map(|f| json!(f)),
            "[a-z\"\\\\ é{}\\[\\]:,]{0,8}".prop_map(Value::String),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-t\"\\\\]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    fn common_prefix(a: &[u8], b: &[u8]) -> usize {
        a.iter().zip(b).take_while(|(x, y)| x == y).count()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn only_the_literal_changes(
            mut doc in proptest::collection::btree_map("[a-z]{1,3}", value(), 0..5),
            mut inner in proptest::collection::btree_map("[a-z]{1,3}", value(), 0..4),
            old in "[a-zA-Z0-9]{0,12}",
            pretty in any::<bool>(),
        ) {
            inner.insert("t".into(), Value::String(old.clone()));
            doc.insert("a".into(), Value::Object(inner.into_iter().collect()));
            let doc = Value::Object(doc.into_iter().collect());
            let text = if pretty { serde_json::to_string_pretty(&doc).unwrap() } else { doc.to_string() };
            let out = write(&text, &["a", "t"], "dt0c01.NEW.VALUE").unwrap();
            prop_assert_eq!(read(&out, &["a", "t"]).unwrap(), Some("dt0c01.NEW.VALUE".to_owned()));
            let p = common_prefix(text.as_bytes(), out.as_bytes());
            let rev = |s: &str| s.bytes().rev().collect::<Vec<u8>>();
            let s = common_prefix(&rev(&text), &rev(&out)).min(text.len() - p).min(out.len() - p);
            prop_assert!(text.len() - p - s <= old.len() + 2, "{} -> {}", text, out);
            prop_assert!(out.len() - p - s <= "dt0c01.NEW.VALUE".len() + 2, "{} -> {}", text, out);
        }
    }
}

fn spec_deliverer(dir: &Path) -> Deliverer {
    Deliverer::new(
        DeliveryContext::with_kube(dir, KubeSettings::default())
            .with_spec_file(dir.join("tokensmith.yaml")),
    )
}

#[tokio::test]
async fn the_spec_the_state_directory_git_and_places_outside_are_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("tokensmith.yaml"), "version: 1\n").unwrap();
    fs::create_dir_all(root.join(".tokensmith/sandbox")).unwrap();
    fs::write(root.join(".tokensmith/sandbox/demo.json"), "{}").unwrap();
    fs::create_dir(root.join(".git")).unwrap();
    fs::write(root.join(".git/config"), "[core]\n").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("elsewhere")).unwrap();
    let sub = root.join("sub");
    fs::create_dir(&sub).unwrap();
    let d = spec_deliverer(root);
    for path in [
        "tokensmith.yaml",
        "./sub/../tokensmith.yaml",
        ".tokensmith/sandbox/demo.json",
        ".git/config",
        "../escaped.env",
        "elsewhere/x.env",
        "sub",
    ] {
        let t = file(path, FileFormat::Raw, None, None);
        let err = d
            .deliver(&t, &Secret::from(SECRET), &token_record())
            .await
            .unwrap_err();
        assert!(!err.to_string().contains(SECRET_PART), "{err}");
        assert!(
            matches!(d.read_holder(&t).await, Holder::Unreadable { .. }),
            "{path}"
        );
    }
    assert_eq!(
        fs::read_to_string(root.join("tokensmith.yaml")).unwrap(),
        "version: 1\n"
    );
    assert_eq!(
        fs::read_to_string(root.join(".tokensmith/sandbox/demo.json")).unwrap(),
        "{}"
    );
    assert_eq!(
        fs::read_to_string(root.join(".git/config")).unwrap(),
        "[core]\n"
    );
    assert!(!root.parent().unwrap().join("escaped.env").exists());
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_fifo_or_device_target_errors_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = crate::support::mkfifo(&dir.path().join("pipe"));
    let d = spec_deliverer(dir.path());
    for path in ["pipe", "/dev/zero"] {
        let t = file(path, FileFormat::Env, Some("TOKEN"), None);
        let run = async {
            let holder = d.read_holder(&t).await;
            let delivered = d.deliver(&t, &Secret::from(SECRET), &token_record()).await;
            (holder, delivered)
        };
        let (holder, delivered) = tokio::time::timeout(std::time::Duration::from_secs(10), run)
            .await
            .expect("no hang");
        assert!(
            matches!(holder, Holder::Unreadable { .. }),
            "{path}: {holder:?}"
        );
        let err = delivered.unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{path}: {err}");
    }
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[tokio::test]
async fn a_loose_existing_mode_is_reported_and_tightened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.env");
    fs::write(&path, "TOKEN=old\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let d = spec_deliverer(dir.path());
    let Target::File(f) = file("token.env", FileFormat::Env, Some("TOKEN"), None) else {
        unreachable!()
    };
    let warning = tokensmith::deliver::file::loose_mode(d.context(), &f).expect("a warning");
    assert!(
        warning.contains("0644") && warning.contains("0600"),
        "{warning}"
    );
    d.deliver(
        &Target::File(f.clone()),
        &Secret::from(SECRET),
        &token_record(),
    )
    .await
    .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert!(tokensmith::deliver::file::loose_mode(d.context(), &f).is_none());
}

#[tokio::test]
async fn an_edit_that_does_not_read_back_is_undone_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.env");
    let original = "# keep me\r\nX=1\nY = 2 # note\n";
    fs::write(&path, original).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let d = spec_deliverer(dir.path());
    // A key the validator refuses, handed to the deliverer directly: the line it writes is not
    // the key it reads.
    let t = file("app.env", FileFormat::Env, Some("A\nINJECTED"), None);
    let err = d
        .deliver(&t, &Secret::from(SECRET), &token_record())
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains(SECRET_PART), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
}

/// Every file format records the token's expiry next to the value and reads it back, secret-free.
#[tokio::test]
async fn every_format_records_the_expiry_and_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = deliverer(dir.path());
    let expires = datetime!(2026-12-01 10:30:15 UTC);
    let record = Record::token(TokenId::new(ID), Some(expires));
    // A json file is updated, never created.
    fs::write(dir.path().join("a.json"), "{\"auth\": {\"token\": \"\"}}\n").unwrap();
    let targets = [
        file("raw", FileFormat::Raw, None, None),
        file("a.env", FileFormat::Env, Some("DT_API_TOKEN"), None),
        file(
            "a.properties",
            FileFormat::Properties,
            Some("authToken"),
            None,
        ),
        file("a.json", FileFormat::Json, Some("auth.token"), None),
        file("a.yaml", FileFormat::Yaml, Some("auth.token"), None),
    ];
    for t in &targets {
        d.deliver(t, &Secret::from(SECRET), &record).await.unwrap();
        assert_eq!(
            d.read_holder(t).await,
            Holder::Token {
                id: TokenId::new(ID),
                expires: Some(expires),
            },
            "{}",
            t.address()
        );
        assert!(matches!(
            d.verify(t, &record).await,
            Ok(Verified::ReadBack(_))
        ));
        // Delivering the same record again changes nothing.
        assert!(
            !d.deliver(t, &Secret::from(SECRET), &record)
                .await
                .unwrap()
                .changed
        );
    }
    let mut recorded = 0;
    for entry in fs::read_dir(dir.path()).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        recorded += text
            .matches(&format!("{ID} until 2026-12-01T10:30:15Z"))
            .count();
        if !text.contains(SECRET) {
            assert_secret_free(&text);
        }
    }
    assert_eq!(recorded, targets.len());
}
