//! Streaming a command's output through a transport: what a job prints must all arrive, in
//! order, whatever bytes it is made of.

use aloft_exec::{LocalTransport, RemoteCommand, Stream, Transport};

#[tokio::test]
async fn a_line_that_is_not_utf8_does_not_end_the_stream() {
    let mut lines = Vec::new();
    let mut sink = |stream: Stream, line: &str| lines.push((stream, line.to_owned()));
    let command = RemoteCommand::new("printf 'caf\\xe9\\n'; echo after; echo err >&2; exit 2");
    let code = LocalTransport.run(&command, &mut sink).await.unwrap();
    assert_eq!(code, 2);
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|(stream, _)| *stream == Stream::Stdout)
        .map(|(_, line)| line.as_str())
        .collect();
    assert_eq!(stdout, ["caf\u{fffd}", "after"]);
    assert!(lines.contains(&(Stream::Stderr, "err".to_owned())));
}

#[tokio::test]
async fn a_job_printing_many_lines_fast_has_every_line_arrive_in_order() {
    let mut count = 0u64;
    let mut in_order = true;
    let mut sink = |_: Stream, line: &str| {
        count += 1;
        in_order &= line.parse::<u64>().ok() == Some(count);
    };
    let command = RemoteCommand::new("seq 1 200000");
    let code = LocalTransport.run(&command, &mut sink).await.unwrap();
    assert_eq!((code, count, in_order), (0, 200_000, true));
}
