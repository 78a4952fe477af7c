//! A job's output, on disk and on the wire.
//!
//! On disk (the head node's `logs/<job>/`, and the copy the client keeps under `$ALOFT_HOME`),
//! each node's output is one plain file, `node-<rank>.log`, holding exactly the bytes the node
//! printed, stdout and stderr interleaved as they arrived; beside it `node-<rank>.streams` says
//! where the output switches between stdout and stderr (9 bytes per switch: the offset as a
//! little-endian `u64`, then 0 for stdout or 1 for stderr; the output starts on stdout). So the
//! logs take the size of the output (a job that prints only to stdout has an empty index),
//! people on the node read them with `less`, and a follower reads them in large chunks instead
//! of parsing a record per line. The index entry is always written before the bytes it
//! describes, so a reader that reads the bytes first, then the index, never misfiles a byte.
//!
//! On the wire (`aloft agent logs --framed`, what the client reads over SSH), the stream is a
//! sequence of frames: a 9-byte header (kind, then the node's rank and the payload's length as
//! little-endian `u32`s) and the payload. Kinds: [`FRAME_STDOUT`] and [`FRAME_STDERR`] carry
//! output bytes (whole lines, except at the very end of a job), [`FRAME_JOB`] comes first and
//! names the job (JSON `{"job_id": N}`), [`FRAME_END`] comes last with the job's state (a JSON
//! [`LogEvent::End`]). Raw bytes in large frames cost the follower and the client a copy each,
//! where JSON per line cost a parse, an escape and a flush per line.

use crate::protocol::{LogEvent, OutStream};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Output bytes a node printed on stdout.
pub const FRAME_STDOUT: u8 = 0;
/// Output bytes a node printed on stderr.
pub const FRAME_STDERR: u8 = 1;
/// The job's state at the end of the stream (JSON [`LogEvent::End`]).
pub const FRAME_END: u8 = 2;
/// Which job the stream is about (JSON `{"job_id": N}`), first.
pub const FRAME_JOB: u8 = 3;
/// A frame's header: kind, rank, payload length.
pub const FRAME_HEADER: usize = 9;
/// The largest payload a writer sends and a reader accepts.
pub const MAX_FRAME: usize = 1 << 20;

/// How much of a node's file a reader takes at once.
const READ_CHUNK: usize = 256 * 1024;
/// How long written output may sit in a writer's buffer before a line flushes it.
const FLUSH_AFTER: Duration = Duration::from_millis(5);

fn data_name(rank: u32) -> String {
    format!("node-{rank}.log")
}

fn index_name(rank: u32) -> String {
    format!("node-{rank}.streams")
}

/// Creates `dir` (and its parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// One node's files, being appended to.
struct NodeWriter {
    data: BufWriter<File>,
    index: File,
    stream: OutStream,
    offset: u64,
}

/// Appends a job's output to its directory. Output is buffered: it reaches the files when a
/// line comes more than a few milliseconds after the last flush, when [`LogWriter::flush`] is
/// called, or when the writer is dropped.
pub struct LogWriter {
    dir: PathBuf,
    nodes: BTreeMap<u32, NodeWriter>,
    last_flush: Instant,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LogWriter {
    /// A writer into `dir`, created (private) if missing. Existing files are appended to.
    pub fn create(dir: &Path) -> std::io::Result<LogWriter> {
        create_private_dir(dir)?;
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            nodes: BTreeMap::new(),
            last_flush: Instant::now(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn node(&mut self, rank: u32) -> std::io::Result<&mut NodeWriter> {
        if !self.nodes.contains_key(&rank) {
            let data = open_append(&self.dir.join(data_name(rank)))?;
            let index = open_append(&self.dir.join(index_name(rank)))?;
            let offset = data.metadata()?.len();
            // Appending to an earlier copy: its last switch says which stream it ended on.
            let stream = last_stream(&self.dir.join(index_name(rank)));
            self.nodes.insert(
                rank,
                NodeWriter {
                    data: BufWriter::with_capacity(64 * 1024, data),
                    index,
                    stream,
                    offset,
                },
            );
        }
        Ok(self.nodes.get_mut(&rank).expect("inserted above"))
    }

    /// Appends bytes node `rank` printed on `stream`.
    pub fn append(&mut self, rank: u32, stream: OutStream, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let node = self.node(rank)?;
        if node.stream != stream {
            // Unbuffered, and before the bytes: a reader never sees bytes without their switch.
            let mut record = [0u8; 9];
            record[..8].copy_from_slice(&node.offset.to_le_bytes());
            record[8] = stream_byte(stream);
            node.index.write_all(&record)?;
            node.stream = stream;
        }
        node.data.write_all(bytes)?;
        node.offset += bytes.len() as u64;
        if self.last_flush.elapsed() >= FLUSH_AFTER {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends one line (a newline is added).
    pub fn append_line(
        &mut self,
        rank: u32,
        stream: OutStream,
        line: &[u8],
    ) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        self.append(rank, stream, &bytes)
    }

    /// Writes out everything buffered.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.last_flush = Instant::now();
        for node in self.nodes.values_mut() {
            node.data.flush()?;
        }
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn stream_byte(stream: OutStream) -> u8 {
    match stream {
        OutStream::Stdout => 0,
        OutStream::Stderr => 1,
    }
}

fn byte_stream(byte: u8) -> OutStream {
    if byte == 1 {
        OutStream::Stderr
    } else {
        OutStream::Stdout
    }
}

/// The stream an index ends on (stdout when it is empty or missing).
fn last_stream(index: &Path) -> OutStream {
    match std::fs::read(index) {
        Ok(bytes) if bytes.len() >= 9 => {
            let last = bytes.len() / 9 * 9 - 1;
            byte_stream(bytes[last])
        }
        _ => OutStream::Stdout,
    }
}

/// Output of one node on one stream: whole lines, except at the end of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    pub rank: u32,
    pub stream: OutStream,
    pub bytes: &'a [u8],
}

/// One node's files, being read.
struct NodeReader {
    data: File,
    /// `None` until the index exists (logs written before there was one have none).
    index: Option<File>,
    index_partial: Vec<u8>,
    /// Stream switches not yet passed: (offset, stream), in order.
    switches: std::collections::VecDeque<(u64, OutStream)>,
    stream: OutStream,
    /// The offset of `pending[0]` in the file.
    offset: u64,
    /// Bytes read but not yet handed out (the start of a line still being written).
    pending: Vec<u8>,
}

/// Reads a job's output as it is written, node by node, in large chunks.
pub struct LogReader {
    dir: PathBuf,
    nodes: BTreeMap<u32, NodeReader>,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LogReader {
    pub fn open(dir: &Path) -> LogReader {
        LogReader {
            dir: dir.to_path_buf(),
            nodes: BTreeMap::new(),
            buffer: vec![0; READ_CHUNK],
        }
    }

    /// Opens the files of nodes that have started printing since the last look.
    fn discover(&mut self) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        for entry in entries {
            let name = entry?.file_name();
            let Some(rank) = name
                .to_str()
                .and_then(|name| name.strip_prefix("node-")?.strip_suffix(".log"))
                .and_then(|rank| rank.parse::<u32>().ok())
            else {
                continue;
            };
            if self.nodes.contains_key(&rank) {
                continue;
            }
            let data = File::open(self.dir.join(data_name(rank)))?;
            self.nodes.insert(
                rank,
                NodeReader {
                    data,
                    index: None,
                    index_partial: Vec::new(),
                    switches: Default::default(),
                    stream: OutStream::Stdout,
                    offset: 0,
                    pending: Vec::new(),
                },
            );
        }
        Ok(())
    }

    /// Hands what was written since the last call to `out`, up to a chunk per node: whole lines
    /// only, unless `to_end` (the job is over: the last line may lack its newline). Returns how
    /// many bytes were handed out; call again while it is not 0 to catch up.
    pub fn read<E>(
        &mut self,
        to_end: bool,
        out: &mut dyn FnMut(Piece<'_>) -> Result<(), E>,
    ) -> Result<u64, ReadError<E>> {
        self.discover().map_err(ReadError::Io)?;
        let mut handed = 0u64;
        for (&rank, node) in &mut self.nodes {
            let read = node.data.read(&mut self.buffer).map_err(ReadError::Io)?;
            node.pending.extend_from_slice(&self.buffer[..read]);
            // The index after the bytes: every switch among the bytes just read is in it.
            if node.index.is_none() {
                node.index = File::open(self.dir.join(index_name(rank))).ok();
            }
            if let Some(index) = &mut node.index {
                index
                    .read_to_end(&mut node.index_partial)
                    .map_err(ReadError::Io)?;
                let whole = node.index_partial.len() / 9 * 9;
                for record in node.index_partial[..whole].chunks_exact(9) {
                    let offset = u64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
                    node.switches.push_back((offset, byte_stream(record[8])));
                }
                node.index_partial.drain(..whole);
            }
            let whole_lines = node
                .pending
                .iter()
                .rposition(|&byte| byte == b'\n')
                .map_or(0, |last| last + 1);
            // The end of the file, of a job that is over: its last line may lack a newline.
            let at_end = to_end && read < self.buffer.len();
            // A line longer than a chunk goes out in pieces rather than filling memory.
            let cut = if at_end || (whole_lines == 0 && node.pending.len() >= READ_CHUNK) {
                node.pending.len()
            } else {
                whole_lines
            };
            let mut start = 0usize;
            while start < cut {
                let position = node.offset + start as u64;
                while let Some(&(offset, stream)) = node.switches.front() {
                    if offset > position {
                        break;
                    }
                    node.stream = stream;
                    node.switches.pop_front();
                }
                let end = match node.switches.front() {
                    Some(&(offset, _)) => cut.min((offset - node.offset) as usize),
                    None => cut,
                };
                out(Piece {
                    rank,
                    stream: node.stream,
                    bytes: &node.pending[start..end],
                })
                .map_err(ReadError::Out)?;
                start = end;
            }
            node.pending.drain(..cut);
            node.offset += cut as u64;
            handed += cut as u64;
        }
        Ok(handed)
    }
}

/// Why reading a job's output stopped.
#[derive(Debug)]
pub enum ReadError<E> {
    /// The files could not be read.
    Io(std::io::Error),
    /// Whoever the output was handed to failed.
    Out(E),
}

/// Appends a frame to `out`.
pub fn write_frame(
    out: &mut dyn Write,
    kind: u8,
    rank: u32,
    payload: &[u8],
) -> std::io::Result<()> {
    for chunk in payload.chunks(MAX_FRAME) {
        let mut header = [0u8; FRAME_HEADER];
        header[0] = kind;
        header[1..5].copy_from_slice(&rank.to_le_bytes());
        header[5..9].copy_from_slice(&(chunk.len() as u32).to_le_bytes());
        out.write_all(&header)?;
        out.write_all(chunk)?;
    }
    Ok(())
}

/// The frame kind for output of `stream`.
pub fn output_kind(stream: OutStream) -> u8 {
    match stream {
        OutStream::Stdout => FRAME_STDOUT,
        OutStream::Stderr => FRAME_STDERR,
    }
}

/// A frame, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<'a> {
    Job(i64),
    Output(Piece<'a>),
    End(LogEvent),
}

/// Why a framed stream could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a frame of unknown kind {0}")]
    UnknownKind(u8),
    #[error("a frame of {0} bytes, more than the {MAX_FRAME} allowed")]
    TooLarge(usize),
    #[error("a frame's JSON payload is unreadable")]
    BadPayload(#[source] serde_json::Error),
}

/// Decodes frames from bytes as they arrive in arbitrary pieces.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
}

impl FrameDecoder {
    /// Adds `bytes` and hands every frame now complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut dyn FnMut(Frame<'_>)) -> Result<(), FrameError> {
        self.buffer.extend_from_slice(bytes);
        let mut start = 0usize;
        while self.buffer.len() - start >= FRAME_HEADER {
            let header = &self.buffer[start..start + FRAME_HEADER];
            let kind = header[0];
            let rank = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes"));
            let length = u32::from_le_bytes(header[5..9].try_into().expect("4 bytes")) as usize;
            if length > MAX_FRAME {
                return Err(FrameError::TooLarge(length));
            }
            if self.buffer.len() - start - FRAME_HEADER < length {
                break;
            }
            let payload = &self.buffer[start + FRAME_HEADER..start + FRAME_HEADER + length];
            match kind {
                FRAME_STDOUT | FRAME_STDERR => out(Frame::Output(Piece {
                    rank,
                    stream: byte_stream(kind),
                    bytes: payload,
                })),
                FRAME_END => out(Frame::End(
                    serde_json::from_slice(payload).map_err(FrameError::BadPayload)?,
                )),
                FRAME_JOB => {
                    let value: serde_json::Value =
                        serde_json::from_slice(payload).map_err(FrameError::BadPayload)?;
                    out(Frame::Job(value["job_id"].as_i64().unwrap_or(0)))
                }
                other => return Err(FrameError::UnknownKind(other)),
            }
            start += FRAME_HEADER + length;
        }
        self.buffer.drain(..start);
        Ok(())
    }

    /// Whether bytes of an unfinished frame are left over.
    pub fn has_partial(&self) -> bool {
        !self.buffer.is_empty()
    }
}

/// Writes `piece` as JSON lines (`{"event": "line", ...}`), one per line of output.
pub fn write_json_lines(out: &mut dyn Write, piece: Piece<'_>) -> std::io::Result<()> {
    for line in lines(piece.bytes) {
        let event = LogEvent::Line {
            rank: piece.rank,
            stream: piece.stream,
            line: String::from_utf8_lossy(line).into_owned(),
        };
        serde_json::to_writer(&mut *out, &event).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The lines of `bytes`, without their newlines (a last line without one is a line too).
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = bytes.is_empty();
    body.split(|&byte| byte == b'\n').filter(move |_| !empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(reader: &mut LogReader, to_end: bool) -> Vec<(u32, OutStream, String)> {
        let mut pieces = Vec::new();
        reader
            .read::<()>(to_end, &mut |piece| {
                pieces.push((
                    piece.rank,
                    piece.stream,
                    String::from_utf8_lossy(piece.bytes).into_owned(),
                ));
                Ok(())
            })
            .unwrap();
        pieces
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("aloft-logs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn output_is_read_back_with_its_streams_and_only_whole_lines_until_the_end() {
        let dir = scratch("roundtrip");
        let mut writer = LogWriter::create(&dir).unwrap();
        writer.append(0, OutStream::Stdout, b"one\ntwo\n").unwrap();
        writer.append(0, OutStream::Stderr, b"oops\n").unwrap();
        writer.append(1, OutStream::Stdout, b"worker\n").unwrap();
        writer.append(0, OutStream::Stdout, b"three\npart").unwrap();
        writer.flush().unwrap();
        let mut reader = LogReader::open(&dir);
        assert_eq!(
            collect(&mut reader, false),
            [
                (0, OutStream::Stdout, "one\ntwo\n".to_owned()),
                (0, OutStream::Stderr, "oops\n".to_owned()),
                (0, OutStream::Stdout, "three\n".to_owned()),
                (1, OutStream::Stdout, "worker\n".to_owned()),
            ]
        );
        writer.append(0, OutStream::Stdout, b"ial").unwrap();
        writer.flush().unwrap();
        assert_eq!(collect(&mut reader, false), []);
        assert_eq!(
            collect(&mut reader, true),
            [(0, OutStream::Stdout, "partial".to_owned())]
        );
        // Stdout only costs nothing beyond the output; each switch 9 bytes.
        let size = |name: &str| std::fs::metadata(dir.join(name)).unwrap().len();
        assert_eq!(
            size("node-0.log"),
            "one\ntwo\noops\nthree\npartial".len() as u64
        );
        assert_eq!(size("node-0.streams"), 18);
        assert_eq!(size("node-1.streams"), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn frames_decode_whatever_pieces_the_bytes_arrive_in() {
        let mut wire = Vec::new();
        write_frame(&mut wire, FRAME_JOB, 0, br#"{"job_id": 7}"#).unwrap();
        write_frame(&mut wire, FRAME_STDOUT, 2, b"out\n").unwrap();
        write_frame(&mut wire, FRAME_STDERR, 0, b"err\n").unwrap();
        let end = LogEvent::End {
            state: aloft_store::JobState::Failed,
            exit_codes: Some(serde_json::json!({"0": 3})),
        };
        write_frame(&mut wire, FRAME_END, 0, &serde_json::to_vec(&end).unwrap()).unwrap();
        for split in [1usize, 2, 5, 9, 10, wire.len()] {
            let mut decoder = FrameDecoder::default();
            let mut seen = Vec::new();
            for chunk in wire.chunks(split) {
                decoder
                    .push(chunk, &mut |frame| seen.push(format!("{frame:?}")))
                    .unwrap();
            }
            assert!(!decoder.has_partial());
            assert_eq!(seen.len(), 4, "split {split}: {seen:?}");
            assert_eq!(seen[0], "Job(7)");
            assert!(seen[1].contains("rank: 2") && seen[1].contains("Stdout"));
            assert!(seen[2].contains("Stderr"));
            assert!(seen[3].contains("Failed"));
        }
        let mut decoder = FrameDecoder::default();
        let error = decoder.push(&[9, 0, 0, 0, 0, 0, 0, 0, 0], &mut |_| {});
        assert!(matches!(error, Err(FrameError::UnknownKind(9))));
        let mut decoder = FrameDecoder::default();
        let error = decoder.push(&[0, 0, 0, 0, 0, 255, 255, 255, 255], &mut |_| {});
        assert!(matches!(error, Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn lines_split_on_newlines_and_keep_a_last_line_without_one() {
        let split = |bytes: &[u8]| -> Vec<String> {
            lines(bytes)
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect()
        };
        assert_eq!(split(b"a\nb\n"), ["a", "b"]);
        assert_eq!(split(b"a\n\nb"), ["a", "", "b"]);
        assert_eq!(split(b""), Vec::<String>::new());
        assert_eq!(split(b"\n"), [""]);
    }
}
