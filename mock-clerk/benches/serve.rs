//! `cargo bench -p mock-clerk --bench serve`: start-up, JWKS throughput, token latency and
//! throughput, the uncached signing rate beside `openssl speed rsa2048` on the same core in the
//! same run, peak RSS of `mock-clerk serve` (release build), and the size of the
//! `clerk-harness/mock-clerk` image when Docker has it.
//!
//! The server is pinned to CPU 0 (`taskset -c 0`), the load generator (wrk, or the
//! sequential client below) to CPU 1; `openssl speed` runs on CPU 0 while the server is idle,
//! alternating with wrk (see the uncached signing row).
//! Needs `taskset` (util-linux), `wrk` (`apt-get install wrk`) and `openssl`; without one of
//! them its rows are skipped with a message.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Server {
    child: Child,
    ready: Value,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(extra: &[&str]) -> (Server, Instant) {
    let t0 = Instant::now();
    let mut child = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_mock-clerk"), "serve"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn taskset mock-clerk (is util-linux installed?)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
    let ready: Value = serde_json::from_str(&line).expect("ready JSON");
    (Server { child, ready }, t0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn wrk(url: &str, connections: u32, script: Option<&str>, seconds: u32) -> Option<String> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1", "wrk", "-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"]);
    let script_file;
    if let Some(lua) = script {
        script_file = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(script_file.path(), lua).expect("write lua");
        cmd.args(["-s", script_file.path().to_str().expect("utf8")]);
    }
    let out = cmd.arg(url).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

fn wrk_rate(report: &str) -> String {
    let rps = report.lines().find(|l| l.starts_with("Requests/sec")).unwrap_or("Requests/sec: ?").trim().to_string();
    let p50 = report.lines().find(|l| l.trim_start().starts_with("50%")).map_or("?".into(), |l| l.trim().to_string());
    let errors = report.lines().find(|l| l.contains("Non-2xx")).map_or(String::new(), |l| format!(" [{}]", l.trim()));
    format!("{rps}, latency {p50}{errors}")
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // The load generator side runs on CPU 1.
    let _ = Command::new("taskset").args(["-p", "-c", "1", &std::process::id().to_string()]).output();
    let client = reqwest::Client::new();

    // 1. Cold start of the binary to the first JWKS 200.
    let mut cold = vec![];
    for _ in 0..20 {
        let (server, t0) = start_server(&[]);
        let url = server.ready["jwks_url"].as_str().expect("jwks_url").to_string();
        loop {
            if client.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
                break;
            }
        }
        cold.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    println!("cold start to first JWKS 200 (median of 20): {:.1} ms", median(&mut cold));

    // 2. In-process start.
    let mut inproc = vec![];
    for _ in 0..200 {
        let t0 = Instant::now();
        let mock = mock_clerk::MockClerk::start().await.expect("start");
        inproc.push(t0.elapsed().as_secs_f64() * 1000.0);
        drop(mock);
    }
    println!("in-process MockClerk::start (median of 200): {:.3} ms", median(&mut inproc));
    let t0 = Instant::now();
    let many: Vec<_> = futures_join(100).await;
    println!("100 instances alive at once (from the pool of 128 keys): {:.0} ms", t0.elapsed().as_secs_f64() * 1000.0);
    drop(many);
    let t0 = Instant::now();
    for _ in 0..100 {
        drop(mock_clerk::MockClerk::start().await.expect("start"));
    }
    println!("100 instances one after another (keys reused from the pool): {:.0} ms", t0.elapsed().as_secs_f64() * 1000.0);

    // 3-5. Under load.
    let (server, _) = start_server(&[]);
    let r = &server.ready;
    let sk = r["secret_key"].as_str().expect("sk");
    let api = r["api_url"].as_str().expect("api");
    let fapi = r["fapi_url"].as_str().expect("fapi");
    let user: Value = client
        .post(format!("{api}/_mock/users"))
        .bearer_auth(sk)
        .json(&serde_json::json!({"email_addresses": ["b@example.com"]}))
        .send()
        .await
        .expect("user")
        .json()
        .await
        .expect("json");
    let session: Value = client
        .post(format!("{api}/_mock/sessions"))
        .bearer_auth(sk)
        .json(&serde_json::json!({"user_id": user["id"]}))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    // The signed-in browser's dev browser: FAPI mints only for the requesting client's sessions.
    let browser: Value = client
        .post(format!("{api}/_mock/browser"))
        .bearer_auth(sk)
        .json(&serde_json::json!({"session_id": session["id"]}))
        .send()
        .await
        .expect("browser")
        .json()
        .await
        .expect("json");
    let dvb = browser["dev_browser"].as_str().expect("dev browser");
    let token_url = format!("{fapi}/v1/client/sessions/{}/tokens?__clerk_db_jwt={dvb}", session["id"].as_str().expect("sid"));

    let mut lat = vec![];
    for i in 0..3000 {
        let t0 = Instant::now();
        let resp = client.post(&token_url).send().await.expect("token");
        assert_eq!(resp.status(), 200);
        let _ = resp.bytes().await;
        if i >= 500 {
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    println!("token over HTTP, sequential keep-alive (2500 req): p50 {:.3} ms, p99 {:.3} ms", percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));

    match wrk(r["jwks_url"].as_str().expect("jwks"), 16, None, 5) {
        Some(report) => println!("JWKS, wrk 16 connections 5 s: {}", wrk_rate(&report)),
        None => println!("JWKS throughput: skipped (wrk not found: apt-get install wrk)"),
    }
    if let Some(report) = wrk(&token_url, 16, Some("wrk.method = \"POST\"\n"), 5) {
        println!("session token, wrk 16 connections 5 s: {}", wrk_rate(&report));
    }
    // Every request signs anew: expires_in_seconds bypasses the per-second token cache.
    let signing_url = format!("{api}/v1/sessions/{}/tokens", session["id"].as_str().expect("sid"));
    let lua = format!("wrk.method = \"POST\"\nwrk.body = '{{\"expires_in_seconds\": 120}}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {sk}\"\n");
    let signed = wrk(&signing_url, 16, Some(&lua), 5);
    if let Some(report) = &signed {
        println!("session token signed per request (BAPI, no cache), wrk 16 connections 5 s: {}", wrk_rate(report));
    }
    // The limit: RSA-2048 signatures per second on the server's core. The machine is shared
    // (and its clock speed drifts), so the two are measured in alternation — 3 s of wrk on the
    // warm server, then 2 s of `openssl speed` on the same core — five times, and the ratio
    // printed is the median of the five paired ratios (each pair a few seconds apart).
    let mut pairs = vec![];
    for _ in 0..5 {
        let tokens = wrk(&signing_url, 16, Some(&lua), 3).as_deref().and_then(requests_per_sec);
        let signs = openssl_rsa2048_signs_per_sec(2);
        match (tokens, signs) {
            (Some(tokens), Some(signs)) => pairs.push((tokens, signs)),
            (None, _) => println!("uncached signing vs openssl speed: skipped (no wrk result)"),
            (_, None) => println!("uncached signing vs openssl speed: skipped (openssl not found or its output not understood)"),
        }
        if pairs.is_empty() {
            break;
        }
    }
    if !pairs.is_empty() {
        let listed: Vec<String> = pairs.iter().map(|(t, s)| format!("{t:.0}/{s:.0} = {:.2}x", t / s)).collect();
        let mut ratios: Vec<f64> = pairs.iter().map(|(t, s)| t / s).collect();
        let mut tokens: Vec<f64> = pairs.iter().map(|p| p.0).collect();
        let mut signs: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        println!(
            "uncached signing on CPU 0: {:.0} tokens/s over HTTP vs openssl speed rsa2048 {:.0} signs/s on the same core (medians): {:.2}x the limit (median of {} alternating pairs: {})",
            median(&mut tokens),
            median(&mut signs),
            median(&mut ratios),
            pairs.len(),
            listed.join(", ")
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    println!("peak RSS of mock-clerk serve after the load: {:.1} MB", peak_rss_kb(server.child.id()) as f64 / 1024.0);
    drop(server);
    match Command::new("docker").args(["image", "inspect", "--format", "{{.Size}}", "clerk-harness/mock-clerk:latest"]).output() {
        Ok(out) if out.status.success() => {
            let bytes: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0.0);
            println!("clerk-harness/mock-clerk:latest image: {:.1} MB (docker image inspect)", bytes / 1e6);
        }
        _ => println!("clerk-harness/mock-clerk image: skipped (Docker does not answer or the image is not built: .ci/images/build.sh mock-clerk)"),
    }
}

/// `Requests/sec` of a wrk report.
fn requests_per_sec(report: &str) -> Option<f64> {
    report.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok())
}

/// `openssl speed -mr -seconds <seconds> rsa2048` pinned to CPU 0: RSA-2048 private-key
/// operations (signatures) per second. The machine-readable line is `+F2:<n>:2048:<sign>:<verify>`, in
/// operations per second (OpenSSL 3) or seconds per operation (OpenSSL 1.1).
fn openssl_rsa2048_signs_per_sec(seconds: u32) -> Option<f64> {
    let out = Command::new("taskset").args(["-c", "0", "openssl", "speed", "-mr", "-seconds", &seconds.to_string(), "rsa2048"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("+F2:"))?;
    let sign: f64 = line.split(':').nth(3)?.parse().ok()?;
    match sign {
        s if s >= 1.0 => Some(s),
        s if s > 0.0 => Some(1.0 / s),
        _ => None,
    }
}

async fn futures_join(n: usize) -> Vec<mock_clerk::MockClerk> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(mock_clerk::MockClerk::start().await.expect("start"));
    }
    all
}
