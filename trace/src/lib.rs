//! Fault traces: what a recording boot tells the host about every fault, and how it travels.
//!
//! A trace is the pager's life on seL4 as a sequence of fixed-size [`Record`]s: each client's launch,
//! every VM fault it took (client, app, area, page, access, IP, class, the frame it resolved to,
//! pages mapped, the fault's kernel entries and guest instructions), each successful share, and each
//! client's end. The simulator replays the launches, faults, shares and ends through the same pager
//! core (`sim::replay`), so its counts can be checked against the boot's own.
//!
//! Three forms, one record:
//! - **On the wire** the root task writes [`Chunk`]s, one serial line each: a prefix, a sequence
//!   number, the records in hex and a CRC-32 of both. A lost line shows as a gap in the numbers, a
//!   damaged one as a bad checksum; [`Chunk::parse`] and [`Reassembly`] name which.
//! - **On disk** (feature `alloc`) a [`Trace`] is a [`FileHeader`] (magic, version, the hash of the
//!   packed apps image it was recorded from, the image's policy and the recording window) followed by
//!   the records; [`Trace::from_bytes`] rejects anything else with a [`FormatError`] naming the cause.
//! - **For people** (feature `alloc`) [`Trace::to_csv`] writes one line per record.
//!
//! Design principles: `no_std` and no `unsafe`, so the root task and the host share this code; fixed
//! little-endian layouts read with zerocopy (no parsing by hand); every malformed input is an error
//! value, never a panic.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod pattern;

use core::fmt;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The CRC every chunk carries (CRC-32/ISO-HDLC, as zlib's `crc32`).
pub const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// What a record says happened.
pub mod kind {
    /// A client was started: `client`, `app`, and the instance in `frame`.
    pub const LAUNCH: u8 = 1;
    /// A VM fault of `client`, served or refused (see [`super::class`]).
    pub const FAULT: u8 = 2;
    /// `client` shared the area at `page` into client `app` at page `frame` (successful shares only).
    pub const SHARE: u8 = 3;
    /// `client` ended (exited or stopped) and was torn down.
    pub const END: u8 = 4;
    /// `client`'s advise call: the range from `page` of `frame` bytes, the advice code
    /// (`abi::advice`) in `access`.
    pub const ADVISE: u8 = 5;
}

/// A fault's class, as the pager decided it.
pub mod class {
    pub const SHARED_HIT: u8 = 0;
    pub const IMAGE_FRAME: u8 = 1;
    pub const COPY: u8 = 2;
    pub const ZERO: u8 = 3;
    pub const MIXED: u8 = 4;
    pub const SPURIOUS: u8 = 5;
    /// The pager refused the fault: the client was stopped.
    pub const REFUSED: u8 = 6;
    /// Recording with a window: a resident page the window had unmapped, mapped again.
    pub const REFAULT: u8 = 7;
    /// Recording with a window: the first write to a page the window had mapped read-only.
    pub const UPGRADE: u8 = 8;
    /// A 2 MiB frame mapped for a whole aligned span (the large-pages policy).
    pub const LARGE: u8 = 9;
    /// A read of a page of zeroes served from the pager's shared zero frame (zero-page, cow).
    pub const ZERO_SHARED: u8 = 10;
    /// The first write to a page the pager mapped from its shared zero frame: a frame of its own.
    pub const ZERO_UPGRADE: u8 = 11;
    /// The first write to a page cow mapped from the image's frame: a copy of its own.
    pub const COW_COPY: u8 = 12;
    /// Classes 0 to this one are known.
    pub const LAST: u8 = COW_COPY;

    /// The class's name in CSV and reports.
    pub fn name(class: u8) -> &'static str {
        match class {
            SHARED_HIT => "shared",
            IMAGE_FRAME => "image",
            COPY => "copy",
            ZERO => "zero",
            MIXED => "mixed",
            SPURIOUS => "spurious",
            REFUSED => "refused",
            REFAULT => "refault",
            UPGRADE => "upgrade",
            LARGE => "large",
            ZERO_SHARED => "zero-shared",
            ZERO_UPGRADE => "zero-upgrade",
            COW_COPY => "cow-copy",
            _ => "?",
        }
    }
}

/// The access that faulted.
pub mod access {
    pub const READ: u8 = 0;
    pub const WRITE: u8 = 1;
    pub const EXECUTE: u8 = 2;

    pub fn name(access: u8) -> &'static str {
        match access {
            READ => "read",
            WRITE => "write",
            EXECUTE => "execute",
            _ => "?",
        }
    }
}

/// One event of a recorded boot: 32 bytes, little-endian.
#[derive(
    FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[repr(C)]
pub struct Record {
    /// One of [`kind`].
    pub kind: u8,
    /// One of [`access`] (faults).
    pub access: u8,
    /// One of [`class`] (faults).
    pub class: u8,
    /// The index of the faulting area in the client's areas, sorted by address (255: none).
    pub area: u8,
    /// The pager's client number.
    pub client: U16,
    /// The app's index in the image (shares: the destination client).
    pub app: U16,
    /// The faulting address's page number (address / 4096); shares: the shared area's.
    pub page: U32,
    /// Faults: the frame that now backs the page, as `pager::FrameRef::to_bits` (a pool frame, or an
    /// image page with bit 31 set; 0 when refused). Launches: the instance. Shares: the page number
    /// the area was shared at.
    pub frame: U32,
    /// Pages mapped by this fault (more than one with fault-around).
    pub pages_mapped: U16,
    /// Kernel entries the pager made serving the fault, its reply not included.
    pub kernel_entries: U16,
    /// Time-stamp ticks from the fault message's arrival to the reply, as `[stats] scope=class`
    /// counts a served fault (guest instructions under `-icount shift=0`); 0 for a refused fault.
    /// A window's refault or upgrade: its own handling, without the reply.
    pub ticks: U32,
    /// The faulting instruction's address.
    pub ip: U64,
}

/// Bytes of one record.
pub const RECORD_BYTES: usize = core::mem::size_of::<Record>();
const _: () = assert!(RECORD_BYTES == 32);

impl Record {
    /// A launch of `client`, instance `instance` of app `app`.
    pub fn launch(client: u16, app: u16, instance: u16) -> Self {
        Self {
            kind: kind::LAUNCH,
            area: u8::MAX,
            client: client.into(),
            app: app.into(),
            frame: u32::from(instance).into(),
            ..Self::default()
        }
    }

    /// The end of `client`.
    pub fn end(client: u16, app: u16) -> Self {
        Self { kind: kind::END, area: u8::MAX, client: client.into(), app: app.into(), ..Self::default() }
    }

    /// A share of `client`'s area at `address` into `destination` at `at`.
    pub fn share(client: u16, address: u64, destination: u16, at: u64) -> Self {
        Self {
            kind: kind::SHARE,
            area: u8::MAX,
            client: client.into(),
            app: destination.into(),
            page: page_number(address).into(),
            frame: page_number(at).into(),
            ..Self::default()
        }
    }

    /// An advise call of `client` over `length` bytes from `start`, with advice `code`.
    pub fn advise(client: u16, start: u64, length: u64, code: u8) -> Self {
        Self {
            kind: kind::ADVISE,
            access: code,
            area: u8::MAX,
            client: client.into(),
            page: page_number(start).into(),
            frame: (length.min(u64::from(u32::MAX)) as u32).into(),
            ..Self::default()
        }
    }

    /// The faulting (or shared) address's page, as an address.
    pub fn page_address(&self) -> u64 {
        u64::from(self.page.get()) * 4096
    }

    /// Checks the fields a reader relies on.
    pub fn check(&self) -> Result<(), RecordError> {
        if !(kind::LAUNCH..=kind::ADVISE).contains(&self.kind) {
            return Err(RecordError::UnknownKind(self.kind));
        }
        if self.kind == kind::FAULT {
            if self.class > class::LAST {
                return Err(RecordError::UnknownClass(self.class));
            }
            if self.access > access::EXECUTE {
                return Err(RecordError::UnknownAccess(self.access));
            }
        }
        Ok(())
    }
}

/// A page number of an address below 2^44 (client addresses stay below 4 GiB).
pub fn page_number(address: u64) -> u32 {
    (address / 4096).min(u64::from(u32::MAX)) as u32
}

/// Why a record is not one a reader understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    UnknownKind(u8),
    UnknownClass(u8),
    UnknownAccess(u8),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKind(k) => write!(f, "unknown record kind {k}"),
            Self::UnknownClass(c) => write!(f, "unknown fault class {c}"),
            Self::UnknownAccess(a) => write!(f, "unknown access {a}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The wire: serial chunks.

/// The prefix of a chunk line.
pub const CHUNK_PREFIX: &str = "[trace] ";
/// The line that ends a trace: `[trace] end <chunks> <records>`.
pub const END_WORD: &str = "end";
/// Most records in one chunk (a 32-byte record is 64 hex digits: a line stays under 600 bytes).
pub const CHUNK_RECORDS: usize = 8;

/// One chunk: its sequence number and up to [`CHUNK_RECORDS`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub sequence: u32,
    pub count: usize,
    pub records: [Record; CHUNK_RECORDS],
}

/// The CRC over a chunk's sequence number (little-endian) and its records' bytes.
pub fn chunk_crc(sequence: u32, records: &[Record]) -> u32 {
    let mut digest = CRC.digest();
    digest.update(&sequence.to_le_bytes());
    digest.update(records.as_bytes());
    digest.finalize()
}

/// Writes one chunk line (without its newline): `[trace] SEQ HEX CRC`, SEQ and CRC in hex.
pub fn write_chunk(out: &mut impl fmt::Write, sequence: u32, records: &[Record]) -> fmt::Result {
    write!(out, "{CHUNK_PREFIX}{sequence:08x} ")?;
    for byte in records.as_bytes() {
        write!(out, "{byte:02x}")?;
    }
    write!(out, " {:08x}", chunk_crc(sequence, records))
}

/// Writes the end line (without its newline).
pub fn write_end(out: &mut impl fmt::Write, chunks: u32, records: u64) -> fmt::Result {
    write!(out, "{CHUNK_PREFIX}{END_WORD} {chunks} {records}")
}

/// A trace line read back.
// A line is parsed and consumed at once, one at a time; boxing the chunk would need `alloc` in a
// crate the root task uses without it, and cost an allocation per line on the host.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    Chunk(Chunk),
    End { chunks: u32, records: u64 },
}

/// Why a chunk line is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// Fields missing, not hex, or a record count that is not whole.
    Malformed,
    /// The CRC does not match the sequence number and records.
    BadChecksum { sequence: u32 },
    /// A record inside is not valid.
    BadRecord { sequence: u32, error: RecordError },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("a malformed trace line"),
            Self::BadChecksum { sequence } => {
                write!(f, "chunk {sequence} is corrupt (its CRC does not match)")
            }
            Self::BadRecord { sequence, error } => write!(f, "chunk {sequence} holds a bad record: {error}"),
        }
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

impl Line {
    /// Reads a line that starts with [`CHUNK_PREFIX`] (the caller picks those out); `None` for any
    /// other line.
    pub fn parse(line: &str) -> Option<Result<Line, ChunkError>> {
        let rest = line.trim_matches(|c| c == '\r' || c == '\n' || c == ' ').strip_prefix(CHUNK_PREFIX)?;
        Some(Self::parse_fields(rest))
    }

    fn parse_fields(rest: &str) -> Result<Line, ChunkError> {
        let mut fields = rest.split(' ');
        let first = fields.next().ok_or(ChunkError::Malformed)?;
        if first == END_WORD {
            let chunks = fields.next().and_then(|f| f.parse().ok()).ok_or(ChunkError::Malformed)?;
            let records = fields.next().and_then(|f| f.parse().ok()).ok_or(ChunkError::Malformed)?;
            return match fields.next() {
                None => Ok(Line::End { chunks, records }),
                Some(_) => Err(ChunkError::Malformed),
            };
        }
        let sequence = u32::from_str_radix(first, 16).map_err(|_| ChunkError::Malformed)?;
        let hex = fields.next().ok_or(ChunkError::Malformed)?.as_bytes();
        let crc = fields.next().and_then(|f| u32::from_str_radix(f, 16).ok()).ok_or(ChunkError::Malformed)?;
        if fields.next().is_some() || hex.len() % (2 * RECORD_BYTES) != 0 {
            return Err(ChunkError::Malformed);
        }
        let count = hex.len() / (2 * RECORD_BYTES);
        if count == 0 || count > CHUNK_RECORDS {
            return Err(ChunkError::Malformed);
        }
        let mut records = [Record::default(); CHUNK_RECORDS];
        let bytes = records.as_mut_bytes();
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let (high, low) = (hex_value(pair[0]), hex_value(pair[1]));
            bytes[i] = (high.ok_or(ChunkError::Malformed)? << 4) | low.ok_or(ChunkError::Malformed)?;
        }
        if chunk_crc(sequence, &records[..count]) != crc {
            return Err(ChunkError::BadChecksum { sequence });
        }
        for record in &records[..count] {
            record.check().map_err(|error| ChunkError::BadRecord { sequence, error })?;
        }
        Ok(Line::Chunk(Chunk { sequence, count, records }))
    }
}

/// Buffers records and hands out a chunk whenever one is full (the root task's side).
#[derive(Debug, Default)]
pub struct Chunker {
    buffer: [Record; CHUNK_RECORDS],
    count: usize,
    sequence: u32,
    records: u64,
}

impl Chunker {
    pub const fn new() -> Self {
        Self {
            buffer: [Record {
                kind: 0,
                access: 0,
                class: 0,
                area: 0,
                client: U16::ZERO,
                app: U16::ZERO,
                page: U32::ZERO,
                frame: U32::ZERO,
                pages_mapped: U16::ZERO,
                kernel_entries: U16::ZERO,
                ticks: U32::ZERO,
                ip: U64::ZERO,
            }; CHUNK_RECORDS],
            count: 0,
            sequence: 0,
            records: 0,
        }
    }

    /// Adds a record; returns `true` when the buffer is full and [`Chunker::flush`] should run.
    pub fn push(&mut self, record: Record) -> bool {
        self.buffer[self.count] = record;
        self.count += 1;
        self.records += 1;
        self.count == CHUNK_RECORDS
    }

    /// Writes the buffered records as one chunk line (with its newline), if there are any.
    pub fn flush(&mut self, out: &mut impl fmt::Write) -> fmt::Result {
        if self.count == 0 {
            return Ok(());
        }
        write_chunk(out, self.sequence, &self.buffer[..self.count])?;
        out.write_str("\n")?;
        self.sequence += 1;
        self.count = 0;
        Ok(())
    }

    /// Flushes and writes the end line.
    pub fn finish(&mut self, out: &mut impl fmt::Write) -> fmt::Result {
        self.flush(out)?;
        write_end(out, self.sequence, self.records)?;
        out.write_str("\n")
    }

    /// Records pushed so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

// ---------------------------------------------------------------------------------------------------
// The file.

/// The first eight bytes of a trace file.
pub const MAGIC: [u8; 8] = *b"SEL4TRC1";
/// The file layout version this crate reads and writes.
pub const VERSION: u32 = 1;

/// The file header: 64 bytes, little-endian.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FileHeader {
    pub magic: [u8; 8],
    pub version: U32,
    /// The packed image's policy number (`abi::policy`) and its fault-around pages.
    pub policy: U32,
    pub policy_pages: U32,
    /// Pages a client kept mapped while recording (0: no window, every page stays mapped).
    pub window: U32,
    pub record_count: U64,
    /// SHA-256 of the packed apps image the trace was recorded from (its first 32 bytes).
    pub image_hash: [u8; 32],
}

/// Why bytes are not a trace file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    TooShort,
    BadMagic,
    UnsupportedVersion(u32),
    /// The header's record count does not match the bytes after it.
    BadLength {
        records: u64,
        bytes: usize,
    },
    BadRecord {
        index: u64,
        error: RecordError,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("too short for a trace header"),
            Self::BadMagic => f.write_str("not a trace file (bad magic)"),
            Self::UnsupportedVersion(v) => {
                write!(f, "trace format version {v} (this reader knows {VERSION})")
            }
            Self::BadLength { records, bytes } => write!(
                f,
                "the header says {records} records but {bytes} bytes follow it ({RECORD_BYTES} a record)"
            ),
            Self::BadRecord { index, error } => write!(f, "record {index}: {error}"),
        }
    }
}

#[cfg(feature = "alloc")]
pub use file::*;

#[cfg(feature = "alloc")]
mod file {
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::fmt::Write;

    use super::*;

    /// A whole trace: its header and records.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Trace {
        pub header: FileHeader,
        pub records: Vec<Record>,
    }

    impl Trace {
        /// A trace of `records` from the image whose hash is `image_hash`.
        pub fn new(
            image_hash: [u8; 32],
            policy: u32,
            policy_pages: u32,
            window: u32,
            records: Vec<Record>,
        ) -> Self {
            let header = FileHeader {
                magic: MAGIC,
                version: VERSION.into(),
                policy: policy.into(),
                policy_pages: policy_pages.into(),
                window: window.into(),
                record_count: (records.len() as u64).into(),
                image_hash,
            };
            Self { header, records }
        }

        /// The file's bytes.
        pub fn to_bytes(&self) -> Vec<u8> {
            let mut bytes = Vec::with_capacity(size_of::<FileHeader>() + self.records.len() * RECORD_BYTES);
            bytes.extend_from_slice(self.header.as_bytes());
            bytes.extend_from_slice(self.records.as_bytes());
            bytes
        }

        /// Reads a file, checking the header and every record.
        pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
            let (header, rest) = FileHeader::read_from_prefix(bytes).map_err(|_| FormatError::TooShort)?;
            if header.magic != MAGIC {
                return Err(FormatError::BadMagic);
            }
            if header.version.get() != VERSION {
                return Err(FormatError::UnsupportedVersion(header.version.get()));
            }
            let count = header.record_count.get();
            let bad_length = FormatError::BadLength { records: count, bytes: rest.len() };
            if (rest.len() % RECORD_BYTES != 0) || (rest.len() / RECORD_BYTES) as u64 != count {
                return Err(bad_length);
            }
            let records = <[Record]>::ref_from_bytes(rest).map_err(|_| bad_length)?;
            for (index, record) in records.iter().enumerate() {
                record.check().map_err(|error| FormatError::BadRecord { index: index as u64, error })?;
            }
            Ok(Self { header, records: records.to_vec() })
        }

        /// Fault records.
        pub fn faults(&self) -> impl Iterator<Item = &Record> + '_ {
            self.records.iter().filter(|r| r.kind == kind::FAULT)
        }

        /// One line per record, with a header line.
        pub fn to_csv(&self) -> String {
            let mut out = String::from(
                "kind,client,app,area,page,access,ip,class,frame,pages_mapped,kernel_entries,ticks\n",
            );
            for r in &self.records {
                let kind = match r.kind {
                    kind::LAUNCH => "launch",
                    kind::FAULT => "fault",
                    kind::SHARE => "share",
                    kind::ADVISE => "advise",
                    _ => "end",
                };
                let fault = r.kind == kind::FAULT;
                let _ = writeln!(
                    out,
                    "{kind},{},{},{},{:#x},{},{:#x},{},{:#x},{},{},{}",
                    r.client.get(),
                    r.app.get(),
                    if r.area == u8::MAX { -1 } else { i32::from(r.area) },
                    r.page_address(),
                    if fault { access::name(r.access) } else { "" },
                    r.ip.get(),
                    if fault { class::name(r.class) } else { "" },
                    r.frame.get(),
                    r.pages_mapped.get(),
                    r.kernel_entries.get(),
                    r.ticks.get()
                );
            }
            out
        }
    }

    /// Gathers chunk lines back into records, in order, failing on a gap, a repeat or damage.
    #[derive(Debug, Default)]
    pub struct Reassembly {
        records: Vec<Record>,
        next: u32,
        ended: Option<(u32, u64)>,
    }

    /// Why the chunks do not make a whole trace.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum ReassemblyError {
        /// A chunk line could not be used; `line` is its 1-based number among the serial lines.
        Chunk { line: usize, error: ChunkError },
        /// Chunk `found` came where `expected` should have: the ones between were lost.
        Lost { expected: u32, found: u32 },
        /// A chunk after the end line.
        AfterEnd { line: usize },
        /// No end line: the boot stopped before the trace was complete.
        NoEnd { chunks: u32 },
        /// The end line's counts disagree with what arrived.
        Counts { chunks: u32, records: u64, said_chunks: u32, said_records: u64 },
    }

    impl fmt::Display for ReassemblyError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Self::Chunk { line, error } => write!(f, "serial line {line}: {error}"),
                Self::Lost { expected, found } => {
                    write!(f, "chunk {expected} was lost (chunk {found} came next)")
                }
                Self::AfterEnd { line } => {
                    write!(f, "serial line {line}: a chunk after the trace's end line")
                }
                Self::NoEnd { chunks } => {
                    write!(f, "the trace has no end line after {chunks} chunks: the boot stopped early")
                }
                Self::Counts { chunks, records, said_chunks, said_records } => write!(
                    f,
                    "{chunks} chunks with {records} records arrived, but the end line says \
                     {said_chunks} chunks with {said_records} records"
                ),
            }
        }
    }

    impl Reassembly {
        pub fn new() -> Self {
            Self::default()
        }

        /// Takes serial line number `number` (1-based); lines that are not the trace's are skipped.
        pub fn line(&mut self, number: usize, line: &str) -> Result<(), ReassemblyError> {
            let Some(parsed) = Line::parse(line) else { return Ok(()) };
            let parsed = parsed.map_err(|error| ReassemblyError::Chunk { line: number, error })?;
            if self.ended.is_some() {
                return Err(ReassemblyError::AfterEnd { line: number });
            }
            match parsed {
                Line::Chunk(chunk) => {
                    if chunk.sequence != self.next {
                        return Err(ReassemblyError::Lost { expected: self.next, found: chunk.sequence });
                    }
                    self.next += 1;
                    self.records.extend_from_slice(&chunk.records[..chunk.count]);
                }
                Line::End { chunks, records } => self.ended = Some((chunks, records)),
            }
            Ok(())
        }

        /// Reads every line of a serial log.
        pub fn from_serial(serial: &str) -> Result<Vec<Record>, ReassemblyError> {
            let mut reassembly = Self::new();
            for (index, line) in serial.lines().enumerate() {
                reassembly.line(index + 1, line)?;
            }
            reassembly.finish()
        }

        /// The records, once the end line has come and agrees.
        pub fn finish(self) -> Result<Vec<Record>, ReassemblyError> {
            let Some((said_chunks, said_records)) = self.ended else {
                return Err(ReassemblyError::NoEnd { chunks: self.next });
            };
            let records = self.records.len() as u64;
            if said_chunks != self.next || said_records != records {
                return Err(ReassemblyError::Counts {
                    chunks: self.next,
                    records,
                    said_chunks,
                    said_records,
                });
            }
            Ok(self.records)
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use alloc::string::String;
    use alloc::vec::Vec;

    use super::*;

    fn fault(n: u32) -> Record {
        Record {
            kind: kind::FAULT,
            access: (n % 3) as u8,
            class: (n % 6) as u8,
            area: (n % 4) as u8,
            client: ((n % 5) as u16).into(),
            app: 1.into(),
            page: (0x400 + n).into(),
            frame: (n | 1 << 31).into(),
            pages_mapped: 1.into(),
            kernel_entries: 3.into(),
            ticks: (1000 + n).into(),
            ip: (0x40_1000 + u64::from(n)).into(),
        }
    }

    fn records(n: u32) -> Vec<Record> {
        let mut all = alloc::vec![Record::launch(0, 1, 0)];
        all.extend((0..n).map(fault));
        all.push(Record::share(0, 0x60_0000, 1, 0x1000_0000));
        all.push(Record::end(0, 1));
        all
    }

    fn serial(records: &[Record]) -> String {
        let mut chunker = Chunker::new();
        let mut out = String::from("[hello#0] hi\n");
        for r in records {
            if chunker.push(*r) {
                chunker.flush(&mut out).unwrap();
            }
        }
        chunker.finish(&mut out).unwrap();
        out.push_str("[stats] scope=total\n");
        out
    }

    #[test]
    fn a_file_round_trips() {
        let trace = Trace::new([7; 32], 2, 4, 0, records(20));
        let bytes = trace.to_bytes();
        assert_eq!(bytes.len(), 64 + 23 * 32);
        assert_eq!(Trace::from_bytes(&bytes).unwrap(), trace);
    }

    #[test]
    fn a_corrupt_file_is_refused_with_its_cause() {
        let bytes = Trace::new([0; 32], 0, 0, 0, records(3)).to_bytes();
        assert_eq!(Trace::from_bytes(&bytes[..10]), Err(FormatError::TooShort));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(Trace::from_bytes(&bad), Err(FormatError::BadMagic));
        let mut bad = bytes.clone();
        bad[8] = 9;
        assert_eq!(Trace::from_bytes(&bad), Err(FormatError::UnsupportedVersion(9)));
        assert_eq!(
            Trace::from_bytes(&bytes[..bytes.len() - 1]),
            Err(FormatError::BadLength { records: 6, bytes: 6 * 32 - 1 })
        );
        let mut bad = bytes.clone();
        bad[64 + 32 + 2] = 40; // the second record's class
        let error = Trace::from_bytes(&bad).unwrap_err();
        assert_eq!(error, FormatError::BadRecord { index: 1, error: RecordError::UnknownClass(40) });
        assert_eq!(alloc::format!("{error}"), "record 1: unknown fault class 40");
    }

    #[test]
    fn chunks_round_trip_through_serial_text() {
        let all = records(37);
        let text = serial(&all);
        assert_eq!(Reassembly::from_serial(&text).unwrap(), all);
    }

    #[test]
    fn a_lost_chunk_is_named() {
        // The root task's lines start with a carriage return (the console ends lines "\n\r").
        let text = serial(&records(37)).replace("[trace]", "\r[trace]");
        let without: String = text
            .lines()
            .filter(|l| !l.starts_with("\r[trace] 00000002"))
            .map(|l| alloc::format!("{l}\n"))
            .collect();
        let error = Reassembly::from_serial(&without).unwrap_err();
        assert_eq!(error, ReassemblyError::Lost { expected: 2, found: 3 });
        assert_eq!(alloc::format!("{error}"), "chunk 2 was lost (chunk 3 came next)");
        // The last chunk lost: only the end line's count tells.
        let lines: Vec<&str> = text.lines().collect();
        let end = lines.iter().position(|l| l.contains(" end ")).unwrap();
        let without_last: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != end - 1)
            .map(|(_, l)| alloc::format!("{l}\n"))
            .collect();
        assert!(matches!(Reassembly::from_serial(&without_last), Err(ReassemblyError::Counts { .. })));
        let truncated: String = lines[..end].iter().map(|l| alloc::format!("{l}\n")).collect();
        assert!(matches!(Reassembly::from_serial(&truncated), Err(ReassemblyError::NoEnd { .. })));
    }

    #[test]
    fn a_damaged_chunk_is_caught_by_its_checksum() {
        let text = serial(&records(10));
        // Flip one hex digit of the first chunk's records.
        let damaged = text.replacen("[trace] 00000000 01", "[trace] 00000000 02", 1);
        assert_ne!(damaged, text);
        let error = Reassembly::from_serial(&damaged).unwrap_err();
        assert_eq!(error, ReassemblyError::Chunk { line: 2, error: ChunkError::BadChecksum { sequence: 0 } });
        let cut = text.replacen("[trace] 00000001 ", "[trace] 00000001 0", 1);
        assert!(matches!(
            Reassembly::from_serial(&cut),
            Err(ReassemblyError::Chunk { error: ChunkError::Malformed, .. })
        ));
    }

    #[test]
    fn the_csv_has_a_line_per_record() {
        let trace = Trace::new([0; 32], 0, 0, 0, records(2));
        let csv = trace.to_csv();
        assert_eq!(csv.lines().count(), 1 + 5);
        assert!(csv
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("fault,0,1,0,0x400000,read,0x401000,shared,0x80000000,1,3,1000"));
    }
}
