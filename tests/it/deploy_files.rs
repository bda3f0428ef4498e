//! The deployment files (`deploy/compose.yaml`, `deploy/switchboard.env.example`,
//! `deploy/kubernetes/`) pass only settings `.env.example` documents, with values that load,
//! and give processes at least the shutdown grace to stop. No YAML crate is a dependency:
//! the files keep to plain `KEY: value` lines, which [`settings`] reads.

use std::{fs, path::Path};

use switchboard::config::Config;

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn unquote(value: &str) -> String {
    value.trim().trim_matches('"').trim_matches('\'').to_string()
}

/// The variables set under every `<block>:` key of a YAML file, with their values: maps
/// (`KEY: value`, as compose's `environment` and a ConfigMap's `data`), compose's list form
/// (`- KEY=value`) and Kubernetes' `env` lists (`- name: KEY` / `value: ...`). Merge keys
/// (`<<: *anchor`) are skipped: the anchored block is read where it is written.
fn settings(yaml: &str, block: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let key = line.trim().split(':').next().unwrap_or_default();
        let rest = line.trim().strip_prefix(key).and_then(|r| r.strip_prefix(':')).map(str::trim);
        // `environment:` or `environment: &anchor`, not `environment: {...}` or a scalar.
        if key != block || !rest.is_some_and(|r| r.is_empty() || r.starts_with('&')) {
            continue;
        }
        let parent = indent(line);
        let body: Vec<&str> = lines[i + 1..].iter().copied().take_while(|l| indent(l) > parent).collect();
        let Some(child) = body.first().map(|l| indent(l)) else { continue };
        for (j, entry) in body.iter().enumerate().filter(|(_, l)| indent(l) == child) {
            let entry = entry.trim();
            if let Some(item) = entry.strip_prefix("- ") {
                if let Some(name) = item.strip_prefix("name:") {
                    let value = body[j + 1..]
                        .iter()
                        .take_while(|l| indent(l) > child)
                        .find_map(|l| l.trim().strip_prefix("value:"))
                        .map(unquote)
                        .unwrap_or_default();
                    found.push((unquote(name), value));
                } else if let Some((k, v)) = item.split_once('=') {
                    found.push((unquote(k), unquote(v)));
                }
            } else if let Some((k, v)) = entry.split_once(':')
                && k != "<<"
            {
                found.push((unquote(k), unquote(v)));
            }
        }
    }
    found
}

/// `KEY=value` lines of an env file.
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Fails naming every variable `.env.example` has no `KEY=` line for (commented or not).
fn assert_documented(file: &str, vars: &[(String, String)]) {
    let example = read(".env.example");
    let documented = |var: &str| {
        example.lines().any(|l| l.trim_start_matches(['#', ' ']).strip_prefix(var).is_some_and(|r| r.starts_with('=')))
    };
    let missing: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).filter(|k| !documented(k)).collect();
    assert!(missing.is_empty(), "{file} sets variables .env.example does not document: {missing:?}");
}

fn grace_secs() -> u64 {
    let config = settings(&read("deploy/kubernetes/configmap.yaml"), "data");
    let grace =
        config.iter().find(|(k, _)| k == "SHUTDOWN_GRACE_SECS").expect("the ConfigMap sets SHUTDOWN_GRACE_SECS");
    grace.1.parse().unwrap()
}

#[test]
fn the_parser_reads_every_form() {
    let yaml = "x: &a\n  environment: &e\n    A: \"1\"\n    <<: *b\n  other: 1\ny:\n  environment:\n    - B=2\n  env:\n    - name: C\n      value: \"3\"\n    - name: D\n      valueFrom: {}\n";
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    assert_eq!(settings(yaml, "environment"), pairs(&[("A", "1"), ("B", "2")]));
    assert_eq!(settings(yaml, "env"), pairs(&[("C", "3"), ("D", "")]));
}

#[test]
fn compose_passes_only_documented_settings_that_load() {
    let compose = settings(&read("deploy/compose.yaml"), "environment");
    assert!(compose.iter().any(|(k, _)| k == "WEBHOOK_RATE_PER_SECOND") && compose.len() >= 8, "{compose:?}");
    assert_documented("deploy/compose.yaml", &compose);
    let env = env_file(&read("deploy/switchboard.env.example"));
    assert!(env.iter().any(|(k, _)| k == "JWT_SECRET"), "{env:?}");
    assert_documented("deploy/switchboard.env.example", &env);
    // Empty values count as unset; the secrets left empty are what the operator fills in.
    Config::from_vars(compose.into_iter().chain(env)).expect("compose.yaml and switchboard.env.example values load");
}

#[test]
fn kubernetes_passes_only_documented_settings_that_load() {
    let config = settings(&read("deploy/kubernetes/configmap.yaml"), "data");
    assert!(config.len() >= 5, "{config:?}");
    assert_documented("deploy/kubernetes/configmap.yaml", &config);
    let secret = settings(&read("deploy/kubernetes/secret.example.yaml"), "stringData");
    assert!(secret.iter().any(|(k, _)| k == "ENCRYPTION_KEY"), "{secret:?}");
    assert_documented("deploy/kubernetes/secret.example.yaml", &secret);
    let mut env = Vec::new();
    for file in ["api.yaml", "worker.yaml", "scheduler.yaml", "migrate-job.yaml"] {
        let set = settings(&read(&format!("deploy/kubernetes/{file}")), "env");
        assert_documented(file, &set);
        env.extend(set);
    }
    assert!(env.iter().any(|(k, _)| k == "WEBHOOK_RATE_PER_SECOND"), "{env:?}");
    // The Secret example's values are placeholders; the rest must be valid settings.
    Config::from_vars(config.into_iter().chain(env)).expect("ConfigMap and env values load");
}

#[test]
fn processes_get_at_least_the_shutdown_grace_to_stop() {
    let grace = grace_secs();
    for file in ["api.yaml", "worker.yaml", "scheduler.yaml"] {
        let text = read(&format!("deploy/kubernetes/{file}"));
        let period: u64 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("terminationGracePeriodSeconds:"))
            .unwrap_or_else(|| panic!("{file} sets terminationGracePeriodSeconds"))
            .trim()
            .parse()
            .unwrap();
        // The API drains requests for the grace, then its background work gets as long
        // again, then up to 5 s to flush last-use times (src/server.rs).
        let needed = if file == "api.yaml" { 2 * grace + 5 } else { grace };
        assert!(period >= needed, "{file}: terminationGracePeriodSeconds {period} < {needed}");
    }
    let compose = read("deploy/compose.yaml");
    let stop: u64 = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("stop_grace_period:"))
        .expect("compose.yaml sets stop_grace_period")
        .trim()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    let compose_grace: u64 = settings(&compose, "environment")
        .into_iter()
        .find(|(k, _)| k == "SHUTDOWN_GRACE_SECS")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(stop >= 2 * compose_grace + 5, "compose.yaml: stop_grace_period {stop}s < the API's shutdown");
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files outside `src/` the binary embeds at compile time (`include_bytes!`,
/// `include_str!`, `sqlx::migrate!`), as repository paths; includes in a file's
/// inline `#[cfg(test)] mod tests { … }` are left out (tests are not built into the image).
fn embedded_files() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    sources(&root.join("src"), &mut files);
    let mut found = vec![];
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let shipped = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or_default();
        for (macro_name, relative_to_file) in
            [("include_bytes!(\"", true), ("include_str!(\"", true), ("sqlx::migrate!(\"", false)]
        {
            for (i, _) in shipped.match_indices(macro_name) {
                let rest = &shipped[i + macro_name.len()..];
                let literal = &rest[..rest.find('"').unwrap()];
                let base = if relative_to_file { file.parent().unwrap().to_path_buf() } else { root.to_path_buf() };
                let mut path = std::path::PathBuf::new();
                for part in base.join(literal).strip_prefix(root).unwrap().components() {
                    match part {
                        std::path::Component::ParentDir => {
                            path.pop();
                        }
                        std::path::Component::CurDir => {}
                        other => path.push(other),
                    }
                }
                found.push(path.to_string_lossy().into_owned());
            }
        }
    }
    found
}

#[test]
fn the_image_build_copies_every_file_the_binary_embeds() {
    let mut embedded = embedded_files();
    assert!(embedded.iter().any(|f| f == "migrations"), "the scan finds sqlx::migrate!: {embedded:?}");
    // The build script is part of the build as much as what the binary embeds.
    if Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs").exists() {
        embedded.push("build.rs".into());
    }
    assert!(embedded.iter().any(|f| f.starts_with("assets/fonts/")), "the scan finds the fonts: {embedded:?}");
    let dockerfile = read("Dockerfile");
    let builder = dockerfile.split("FROM ").nth(1).expect("a builder stage");
    let copied: Vec<&str> = builder
        .lines()
        .filter_map(|l| l.trim().strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    for file in embedded.iter().filter(|f| !f.starts_with("src/")) {
        let top = file.split('/').next().unwrap();
        assert!(copied.contains(&top), "the Dockerfile's builder stage does not COPY `{top}` ({file} is embedded)");
        assert!(!ignored.iter().any(|i| i == top), ".dockerignore leaves out `{top}` ({file} is embedded)");
    }
}

/// `sqlx::migrate!` reads `migrations/` without cargo knowing: without the build script's
/// `rerun-if-changed`, a new migration alone left an incremental build with the old set.
#[test]
fn a_new_migration_rebuilds_the_binary() {
    let embedded = embedded_files();
    assert!(embedded.iter().any(|f| f == "migrations"), "the binary embeds migrations/");
    let build = read("build.rs");
    assert!(
        build.lines().any(|l| l.contains("\"cargo:rerun-if-changed=migrations\"")),
        "build.rs must tell cargo to rebuild when migrations/ changes"
    );
}
