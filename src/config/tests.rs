use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

const AGE1: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
const AGE2: &str = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

fn config(yaml: &str) -> Config {
    Config::parse("/p/.sops.yaml", yaml.as_bytes()).unwrap()
}

fn rule(yaml: &str, file: &str) -> CreationRule {
    config(yaml).rule_for(Path::new(file)).unwrap().unwrap()
}

fn err(yaml: &str, file: &str) -> String {
    match Config::parse("/p/.sops.yaml", yaml.as_bytes()) {
        Err(e) => e.to_string(),
        Ok(c) => c.rule_for(Path::new(file)).unwrap_err().to_string(),
    }
}

#[test]
fn lookup_searches_upwards_and_ignores_sops_yml() {
    let tmp = tempfile::tempdir().unwrap();
    let deep = tmp.path().join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(tmp.path().join("a/.sops.yaml"), "").unwrap();
    let found = lookup(&deep);
    assert_eq!(found.path, Some(tmp.path().join("a/.sops.yaml")));
    assert_eq!(found.warning, None);

    // A nearer `.sops.yml` is not used, only named in a warning.
    std::fs::write(tmp.path().join("a/b/.sops.yml"), "").unwrap();
    let found = lookup(&deep);
    assert_eq!(found.path, Some(tmp.path().join("a/.sops.yaml")));
    let warning = found.warning.unwrap();
    assert!(warning.contains("b/.sops.yml"), "{warning}");
    assert!(warning.contains("using"), "{warning}");

    // The nearest `.sops.yaml` wins.
    std::fs::write(tmp.path().join("a/b/c/.sops.yaml"), "").unwrap();
    assert_eq!(lookup(&deep).path, Some(deep.join(".sops.yaml")));
}

#[test]
fn lookup_relative_start_gives_relative_paths() {
    assert_eq!(
        join_clean(Path::new("."), CONFIG_FILE_NAME),
        PathBuf::from(".sops.yaml")
    );
    assert_eq!(join_clean(Path::new("."), ".."), PathBuf::from(".."));
    assert_eq!(
        join_clean(Path::new("../.."), ".."),
        PathBuf::from("../../..")
    );
    assert_eq!(clean(Path::new("/a/b/../../..")), PathBuf::from("/"));
}

#[test]
fn lookup_stops_once_every_further_path_names_the_root() {
    assert_eq!(distinct_steps(Path::new("/")), 1);
    assert_eq!(distinct_steps(Path::new("/a/b/../c")), 3);
    let cwd = std::env::current_dir().unwrap();
    let climbs = cwd.components().count() - 1;
    assert_eq!(distinct_steps(Path::new(".")), climbs + 1);
    assert_eq!(distinct_steps(Path::new("x/./y")), climbs + 3);
    // The last directory searched is the root; every further one is too.
    let last = (1..distinct_steps(Path::new(".")))
        .fold(PathBuf::from("."), |dir, _| join_clean(&dir, ".."));
    assert_eq!(
        std::fs::canonicalize(&last).unwrap(),
        std::fs::canonicalize(join_clean(&last, "..")).unwrap()
    );
    assert_eq!(std::fs::canonicalize(&last).unwrap(), PathBuf::from("/"));
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(".sops.yaml");
    std::fs::write(&path, format!("creation_rules:\n  - age: {AGE1}\n")).unwrap();
    let c = Config::load(&path).unwrap();
    assert!(c.has_creation_rules());
    let (found, _) = Config::find(Some(&path)).unwrap();
    assert_eq!(found.unwrap().path, path);

    let missing = tmp.path().join("nope.yaml");
    let e = Config::load(&missing).unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Read(_)));
    assert!(e.to_string().starts_with(&missing.display().to_string()));
}

#[test]
fn without_creation_rules_there_is_no_rule() {
    for yaml in [
        "",
        "stores: {}\n",
        "creation_rules:\n",
        "destination_rules: []\n",
    ] {
        let c = config(yaml);
        assert!(!c.has_creation_rules());
        assert!(c.rule_for(Path::new("/p/x.yaml")).unwrap().is_none());
    }
    assert_eq!(
        err("creation_rules: []\n", "/p/x.yaml"),
        "/p/.sops.yaml: no matching creation rules found"
    );
}

#[test]
fn first_matching_rule_wins_and_no_regex_matches_all() {
    let yaml = format!(
        "creation_rules:\n  - path_regex: \\.prod\\.yaml$\n    pgp: AAAA\n  \
         - path_regex: \\.yaml$\n    age: {AGE1}\n  - age: {AGE2}\n"
    );
    assert_eq!(rule(&yaml, "/p/x.prod.yaml").index, 0);
    assert_eq!(rule(&yaml, "/p/x.yaml").index, 1);
    assert_eq!(rule(&yaml, "/p/x.json").index, 2);
    assert_eq!(
        rule(&yaml, "/p/x.json").key_groups,
        vec![vec![KeySpec::AgeRecipient(AGE2.into())]]
    );
    // An empty path_regex matches everything too.
    let yaml = "creation_rules:\n  - path_regex: ''\n    pgp: A\n  - pgp: B\n";
    assert_eq!(rule(yaml, "/q/anything").index, 0);
    let e = err(
        "creation_rules:\n  - path_regex: nomatch\n    pgp: A\n",
        "/p/x",
    );
    assert_eq!(e, "/p/.sops.yaml: no matching creation rules found");
}

#[test]
fn path_is_relative_to_the_config_directory() {
    let yaml =
        "creation_rules:\n  - path_regex: ^secrets/\n    pgp: A\n  - path_regex: ^/\n    pgp: B\n";
    assert_eq!(rule(yaml, "/p/secrets/x.yaml").index, 0);
    assert_eq!(rule(yaml, "/p/sub/../secrets/x.yaml").index, 0);
    // Outside the config's directory the absolute path is matched.
    assert_eq!(rule(yaml, "/other/secrets/x.yaml").index, 1);
    // A relative config path is taken from the working directory.
    let cwd = std::env::current_dir().unwrap();
    let c = Config::parse(".sops.yaml", yaml.as_bytes()).unwrap();
    let r = c.rule_for(&cwd.join("secrets/a")).unwrap().unwrap();
    assert_eq!(r.index, 0);
    let r = c.rule_for(Path::new("secrets/a")).unwrap().unwrap();
    assert_eq!(r.index, 0);
}

#[test]
fn bad_path_regex_is_reported_only_when_reached() {
    let yaml = "creation_rules:\n  - path_regex: a\n    pgp: A\n  - path_regex: '(['\n    pgp: B\n";
    assert_eq!(rule(yaml, "/p/a").index, 0);
    let e = err(yaml, "/p/b");
    assert!(
        e.starts_with(
            "/p/.sops.yaml: creation_rules[1]: `path_regex` is not a valid regular expression"
        ),
        "{e}"
    );
}

#[test]
fn string_and_list_keys() {
    let from_string = rule(
        &format!("creation_rules:\n  - age: '{AGE1}, {AGE2},'\n"),
        "/p/x",
    );
    let from_list = rule(
        &format!("creation_rules:\n  - age: [{AGE1}, {AGE2}]\n"),
        "/p/x",
    );
    let expected = vec![vec![
        KeySpec::AgeRecipient(AGE1.into()),
        KeySpec::AgeRecipient(AGE2.into()),
    ]];
    assert_eq!(from_string.key_groups, expected);
    assert_eq!(from_list.key_groups, expected);
    // A list item may hold several comma-separated keys, as in the reference.
    let joined = rule(
        &format!("creation_rules:\n  - age: ['{AGE1},{AGE2}']\n"),
        "/p/x",
    );
    assert_eq!(joined.key_groups, expected);

    let r = rule(
        "creation_rules:\n  - kms: 'arn:aws:kms:r:1:key/a+arn:aws:iam::1:role/r, arn:aws:kms:r:1:key/b'\n    \
         aws_profile: dev\n    pgp: [ 'AB CD', EF ]\n    gcp_kms: projects/p/k\n    \
         azure_keyvault: https://v.vault.azure.net/keys/k/v1,https://v.vault.azure.net/keys/k2\n    \
         hc_vault_transit_uri: [https://vault:8200/v1/transit/keys/k]\n    hckms: [reg:id]\n",
        "/p/x",
    );
    assert_eq!(
        r.key_groups,
        vec![vec![
            KeySpec::Pgp("ABCD".into()),
            KeySpec::Pgp("EF".into()),
            KeySpec::Kms {
                arn: "arn:aws:kms:r:1:key/a".into(),
                role: Some("arn:aws:iam::1:role/r".into()),
                context: BTreeMap::new(),
                profile: Some("dev".into()),
            },
            KeySpec::Kms {
                arn: "arn:aws:kms:r:1:key/b".into(),
                role: None,
                context: BTreeMap::new(),
                profile: Some("dev".into()),
            },
            KeySpec::GcpKms("projects/p/k".into()),
            KeySpec::HcKms("reg:id".into()),
            KeySpec::AzureKv {
                vault_url: "https://v.vault.azure.net".into(),
                key: "k".into(),
                version: Some("v1".into()),
            },
            KeySpec::AzureKv {
                vault_url: "https://v.vault.azure.net".into(),
                key: "k2".into(),
                version: None,
            },
            KeySpec::HcVault("https://vault:8200/v1/transit/keys/k".into()),
        ]]
    );
}

#[test]
fn wrong_key_field_types_are_named_for_the_chosen_rule_only() {
    let yaml = "creation_rules:\n  - path_regex: a\n    pgp: A\n  - age: [x, 5]\n";
    assert_eq!(rule(yaml, "/p/a").index, 0);
    assert_eq!(
        err(yaml, "/p/b"),
        "/p/.sops.yaml: creation_rules[1]: `age` must be a string or a list of strings"
    );
    assert_eq!(
        err("creation_rules:\n  - kms: {a: 1}\n", "/p/b"),
        "/p/.sops.yaml: creation_rules[0]: `kms` must be a string or a list of strings"
    );
    let e = err(
        "creation_rules:\n  - azure_keyvault: http://v/keys/k\n",
        "/p/b",
    );
    assert!(
        e.starts_with("/p/.sops.yaml: creation_rules[0]: `azure_keyvault`: could not parse"),
        "{e}"
    );
}

#[test]
fn key_groups_with_merge_and_dedup() {
    let yaml = format!(
        "creation_rules:\n  - key_groups:\n    - merge:\n      - age: [{AGE1}]\n      - pgp: [A]\n        \
         merge:\n        - age: [{AGE2}]\n      age: [{AGE1}]\n      pgp: [B]\n    - pgp: [C]\n      \
         hc_vault: [https://vault/v1/transit/keys/k]\n      gcp_kms:\n      - resource_id: projects/p/k\n      \
         hckms:\n      - key_id: reg:id\n    shamir_threshold: 2\n    age: {AGE2}\n"
    );
    let r = rule(&yaml, "/p/x");
    assert_eq!(r.shamir_threshold, 2);
    assert_eq!(
        r.key_groups,
        vec![
            vec![
                KeySpec::AgeRecipient(AGE1.into()),
                KeySpec::AgeRecipient(AGE2.into()),
                KeySpec::Pgp("A".into()),
                KeySpec::Pgp("B".into()),
            ],
            vec![
                KeySpec::Pgp("C".into()),
                KeySpec::GcpKms("projects/p/k".into()),
                KeySpec::HcKms("reg:id".into()),
                KeySpec::HcVault("https://vault/v1/transit/keys/k".into()),
            ],
        ],
        "merged groups come first, duplicates are dropped, flat keys are ignored"
    );
}

#[test]
fn key_group_kms_and_azure_entries() {
    let yaml = "creation_rules:\n  - key_groups:\n    - kms:\n      - arn: arn:a\n        role: arn:r\n        \
                context: {b: '2', a: x}\n        aws_profile: prof\n      - arn: arn:a\n        role: other\n      \
                - arn: arn:b\n      azure_keyvault:\n      - vaultUrl: https://v.vault.azure.net\n        key: k\n        \
                version: v1\n      - vaultUrl: https://v.vault.azure.net\n        key: k2\n";
    let r = rule(yaml, "/p/x");
    let context: BTreeMap<String, String> =
        [("a".into(), "x".into()), ("b".into(), "2".into())].into();
    assert_eq!(
        r.key_groups,
        vec![vec![
            KeySpec::Kms {
                arn: "arn:a".into(),
                role: Some("arn:r".into()),
                context,
                profile: Some("prof".into()),
            },
            KeySpec::Kms {
                arn: "arn:b".into(),
                role: None,
                context: BTreeMap::new(),
                profile: None,
            },
            KeySpec::AzureKv {
                vault_url: "https://v.vault.azure.net".into(),
                key: "k".into(),
                version: Some("v1".into()),
            },
            KeySpec::AzureKv {
                vault_url: "https://v.vault.azure.net".into(),
                key: "k2".into(),
                version: None,
            },
        ]]
    );
    let e = err(
        "creation_rules:\n  - key_groups:\n    - kms:\n      - arn: a\n        context: {k: }\n",
        "/p/x",
    );
    assert_eq!(
        e,
        "/p/.sops.yaml: creation_rules[0].key_groups[0].kms[0]: `context.k` must be a string"
    );
}

#[test]
fn key_group_type_errors_fail_the_load() {
    // yaml.v3 decodes the whole file, so a non-chosen rule's types count too.
    let e = err(
        &format!("creation_rules:\n  - pgp: A\n  - key_groups:\n    - age: {AGE1}\n"),
        "/p/x",
    );
    assert_eq!(
        e,
        "/p/.sops.yaml: creation_rules[1].key_groups[0]: `age` must be a list of strings"
    );
    let e = err(
        "creation_rules:\n  - key_groups:\n    - kms: [arn]\n",
        "/p/x",
    );
    assert_eq!(
        e,
        "/p/.sops.yaml: creation_rules[0].key_groups[0]: `kms` must be a list of maps"
    );
    let e = err("creation_rules:\n  - key_groups: [[a]]\n", "/p/x");
    assert_eq!(
        e,
        "/p/.sops.yaml: creation_rules[0].key_groups[0]: `key_groups` must be a list of maps"
    );
}

#[test]
fn selection_keys() {
    let r = rule("creation_rules:\n  - pgp: A\n", "/p/x");
    assert!(r.crypt_rule.is_none());
    assert!(!r.mac_only_encrypted);
    assert_eq!(r.shamir_threshold, 0);
    let r = rule(
        "creation_rules:\n  - encrypted_regex: ^(data|\\w+_key)$\n    mac_only_encrypted: true\n",
        "/p/x",
    );
    assert!(r.mac_only_encrypted);
    match r.crypt_rule {
        Some(CryptRule::EncryptedRegex(re)) => assert!(re.is_match("api_key")),
        other => panic!("{other:?}"),
    }
    let r = rule(
        "creation_rules:\n  - unencrypted_suffix: _pt\n    mac_only_encrypted: yes\n",
        "/p/x",
    );
    assert!(r.mac_only_encrypted);
    assert!(matches!(r.crypt_rule, Some(CryptRule::UnencryptedSuffix(s)) if s == "_pt"));
    let r = rule(
        "creation_rules:\n  - encrypted_comment_regex: sops:enc\n",
        "/p/x",
    );
    assert!(matches!(
        r.crypt_rule,
        Some(CryptRule::EncryptedCommentRegex(_))
    ));
}

#[test]
fn two_selection_keys_are_refused() {
    let yaml =
        "creation_rules:\n  - path_regex: a\n  - unencrypted_suffix: _u\n    encrypted_regex: x\n";
    assert_eq!(
        rule(yaml, "/p/a").index,
        0,
        "checked for the chosen rule only"
    );
    assert_eq!(
        err(yaml, "/p/b"),
        "/p/.sops.yaml: creation_rules[1]: cannot use more than one of encrypted_suffix, \
         unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, \
         or unencrypted_comment_regex for the same rule"
    );
    // Empty values do not count, as in the reference.
    let r = rule(
        "creation_rules:\n  - unencrypted_suffix: ''\n    encrypted_regex: x\n",
        "/p/x",
    );
    assert!(matches!(r.crypt_rule, Some(CryptRule::EncryptedRegex(_))));
    let e = err("creation_rules:\n  - encrypted_regex: '(['\n", "/p/x");
    assert!(
        e.starts_with("/p/.sops.yaml: creation_rules[0]: `encrypted_regex` is not a valid"),
        "{e}"
    );
}

#[test]
fn wrong_types_and_broken_yaml_are_named() {
    let cases = [
        (
            "creation_rules:\n  - pgp: A\n  - pgp: B\n  - shamir_threshold: abc\n",
            "/p/.sops.yaml: creation_rules[2]: `shamir_threshold` must be an integer",
        ),
        (
            "creation_rules:\n  - mac_only_encrypted: 'maybe'\n",
            "/p/.sops.yaml: creation_rules[0]: `mac_only_encrypted` must be a boolean",
        ),
        (
            "creation_rules:\n  - path_regex: [a]\n",
            "/p/.sops.yaml: creation_rules[0]: `path_regex` must be a string",
        ),
        (
            "creation_rules:\n  - encrypted_suffix: {a: b}\n",
            "/p/.sops.yaml: creation_rules[0]: `encrypted_suffix` must be a string",
        ),
        (
            "creation_rules: 5\n",
            "/p/.sops.yaml: `creation_rules` must be a list",
        ),
        (
            "creation_rules: [5]\n",
            "/p/.sops.yaml: creation_rules[0]: `creation_rules` must be a list of maps",
        ),
        (
            "stores:\n  json:\n    indent: two\n",
            "/p/.sops.yaml: stores.json: `indent` must be an integer",
        ),
        ("stores: [1]\n", "/p/.sops.yaml: `stores` must be a map"),
    ];
    for (yaml, expected) in cases {
        assert_eq!(err(yaml, "/p/x"), expected, "{yaml}");
    }
    // Negative thresholds: the reference writes them into the file; refused here.
    assert_eq!(
        err("creation_rules:\n  - shamir_threshold: -1\n", "/p/x"),
        "/p/.sops.yaml: creation_rules[0]: `shamir_threshold` must be a non-negative integer"
    );
    let e = Config::parse("/p/.sops.yaml", b"creation_rules: [\n").unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Yaml(_)), "{e}");
    assert!(
        e.to_string().starts_with("/p/.sops.yaml: not valid YAML"),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_ignored() {
    let r = rule(
        "creation_rules:\n  - pgp: A\n    bogus: 1\n    filename_regex: x\nbogus2: [3]\n",
        "/p/x",
    );
    assert_eq!(r.key_groups, vec![vec![KeySpec::Pgp("A".into())]]);
}

#[test]
fn stores_indents() {
    let c = config("stores:\n  yaml:\n    indent: 2\n  json:\n    indent: 3\n  json_binary:\n    indent: 0\n  dotenv: {}\n");
    assert_eq!(
        c.stores,
        Stores {
            yaml_indent: Some(2),
            json_indent: Some(3),
            json_binary_indent: Some(0),
        }
    );
    assert_eq!(config("stores:\n  yaml:\n").stores, Stores::default());
    assert_eq!(config("creation_rules: []\n").stores, Stores::default());
}
