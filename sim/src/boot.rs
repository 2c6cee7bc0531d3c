//! The boot image: app executables packed page aligned, as the root task's loaded image holds them.
//!
//! On seL4 the apps live inside the root task's ELF, each starting on a page boundary, so every page of
//! an app file is one of bootinfo's `userImageFrames` and the pager can map a read-only page straight
//! from it. [`BootImage`] packs files the same way and says at which page each starts.

use crate::kernel::FRAME_BYTES;

/// Files packed one after another, each starting on a page boundary.
#[derive(Clone, Debug, Default)]
pub struct BootImage {
    bytes: Vec<u8>,
    files: Vec<PackedFile>,
}

/// Where one file lies in a [`BootImage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedFile {
    /// The boot-image page the file starts on (the pager's `first_page`).
    pub first_page: u32,
    /// The file's length in bytes.
    pub length: usize,
}

impl BootImage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `file` at the next page boundary and returns its index.
    pub fn add(&mut self, file: &[u8]) -> usize {
        let start = self.bytes.len().next_multiple_of(FRAME_BYTES);
        self.bytes.resize(start, 0);
        self.bytes.extend_from_slice(file);
        self.files.push(PackedFile { first_page: (start / FRAME_BYTES) as u32, length: file.len() });
        self.files.len() - 1
    }

    /// Builder form of [`BootImage::add`].
    pub fn with(mut self, file: &[u8]) -> Self {
        self.add(file);
        self
    }

    /// The whole image (not padded after the last file).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Every packed file, in the order added.
    pub fn files(&self) -> &[PackedFile] {
        &self.files
    }

    /// The bytes of file `index`, borrowed from the image.
    pub fn file(&self, index: usize) -> &[u8] {
        let packed = self.files[index];
        let start = packed.first_page as usize * FRAME_BYTES;
        &self.bytes[start..start + packed.length]
    }
}
