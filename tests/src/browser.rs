//! Remote control of headless Chromium through `tests/browser/driver.mjs` (playwright-core):
//! open pages, evaluate JavaScript in them, close them. See tests/browser/README.md.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The built browser-test page folder (`make web` builds it).
pub fn harness_web_root() -> anyhow::Result<PathBuf> {
    let dir = repo_root().join("tests/browser/dist");
    if !dir.join("harness.html").is_file() {
        bail!(
            "{} has no harness.html: run `make web` first",
            dir.display()
        );
    }
    Ok(dir)
}

/// A running Chromium under the node driver.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    replies: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl Browser {
    /// Starts the driver, which starts Chromium. Fails loudly when Chromium, node or the
    /// driver's packages are missing: a browser test never skips.
    pub async fn launch() -> anyhow::Result<Browser> {
        for path in ["/usr/bin/chromium", "/usr/bin/node"] {
            if !Path::new(path).exists() {
                bail!(
                    "{path} is missing: run `make test` (it installs Debian's chromium and nodejs)"
                );
            }
        }
        let driver = repo_root().join("tests/browser/driver.mjs");
        if !repo_root()
            .join("tests/browser/node_modules/playwright-core")
            .is_dir()
        {
            bail!("tests/browser/node_modules is missing: run `make web`");
        }
        let mut child = Command::new("/usr/bin/node")
            .arg(&driver)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", driver.display()))?;
        let stdin = child.stdin.take().unwrap();
        let replies = BufReader::new(child.stdout.take().unwrap()).lines();
        Ok(Browser {
            child,
            stdin,
            replies,
            next_id: 1,
        })
    }

    async fn call(&mut self, mut command: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        let line = format!("{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .context("the browser driver is gone")?;
        let reply = tokio::time::timeout(Duration::from_secs(60), self.replies.next_line())
            .await
            .with_context(|| format!("the browser driver did not answer {command} in 60 s"))??
            .ok_or_else(|| anyhow!("the browser driver exited (see its stderr above)"))?;
        let reply: Value = serde_json::from_str(&reply)
            .with_context(|| format!("the browser driver wrote {reply:?}"))?;
        if reply["id"] != json!(id) {
            bail!("the browser driver answered {reply} to request {id}");
        }
        if reply["ok"] != json!(true) {
            bail!("{}: {}", command["cmd"], reply["error"]);
        }
        Ok(reply["value"].clone())
    }

    /// Opens `url` in a new page (its own browser context) named `page`.
    pub async fn open(&mut self, page: &str, url: &str) -> anyhow::Result<()> {
        self.call(json!({"cmd": "open", "page": page, "url": url}))
            .await
            .map(|_| ())
    }

    /// Evaluates a JavaScript expression (awaited if it is a promise) and returns its JSON value.
    pub async fn eval(&mut self, page: &str, expr: &str) -> anyhow::Result<Value> {
        self.call(json!({"cmd": "eval", "page": page, "expr": expr}))
            .await
            .with_context(|| format!("in page {page}: {expr}"))
    }

    pub async fn close(&mut self, page: &str) -> anyhow::Result<()> {
        self.call(json!({"cmd": "close", "page": page}))
            .await
            .map(|_| ())
    }

    /// Evaluates `expr` until `done` accepts its value, for at most `limit`. The error shows
    /// the last value seen, so a failure says how far things got.
    pub async fn wait_for(
        &mut self,
        page: &str,
        expr: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let v = self.eval(page, expr).await?;
            if done(&v) {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("page {page}: `{expr}` still {v} after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn quit(mut self) -> anyhow::Result<()> {
        let _ = self.call(json!({"cmd": "quit"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        Ok(())
    }
}
