//! Time to first byte of streamed chat completions, measured one request at a time so the
//! figure is latency, not queueing. Prints one JSON line: count, p50 and p99 in microseconds.

use std::time::Instant;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Full URL of the chat completions endpoint.
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "")]
    token: String,
    #[arg(long)]
    model: String,
    #[arg(long, default_value_t = 500)]
    requests: usize,
}

#[allow(clippy::print_stdout, reason = "the JSON result on stdout is this tool's output")]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let body = serde_json::json!({"model": args.model, "stream": true, "max_tokens": 16, "messages": [{"role": "user", "content": "Hello!"}]});
    let mut samples = Vec::with_capacity(args.requests);
    for i in 0..args.requests + 20 {
        let started = Instant::now();
        let mut response = client.post(&args.url).bearer_auth(&args.token).json(&body).send().await?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()).into());
        }
        let first = response.chunk().await?;
        let elapsed = started.elapsed();
        if first.is_none() {
            return Err("empty stream".into());
        }
        while response.chunk().await?.is_some() {}
        // The first 20 warm the connection pools on both sides.
        if i >= 20 {
            samples.push(elapsed.as_micros() as u64);
        }
    }
    samples.sort_unstable();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!("{}", serde_json::json!({"requests": samples.len(), "p50_us": pct(50), "p99_us": pct(99)}));
    Ok(())
}
