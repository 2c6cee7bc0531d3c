//! Finding the packed boot image at `__apps_start` (the protocol with `cargo xtask`'s composition).
//!
//! The link script ends the root task with a one-page zero placeholder at `__apps_start`, in its
//! own, highest `PT_LOAD`. Composition repoints that program header at a packed
//! [`bootimage::BootImage`] appended to the ELF file, so at boot the bytes from `__apps_start` to
//! the end of the loaded image are either the placeholder (self-test mode) or an image.

use bootimage::{BootImage, FormatError};
use sel4::BootInfo;

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;

/// The one-page placeholder the image replaces. Its own program header, last in the file.
#[used]
#[link_section = ".apps"]
static APPS_PLACEHOLDER: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];

#[cfg(target_os = "none")]
extern "C" {
    /// The lowest address of the root task's image (link.ld).
    static __image_start: u8;
    /// The start of the placeholder page (link.ld).
    static __apps_start: u8;
}

/// What the bytes at `__apps_start` are.
pub enum Contents {
    /// The zero placeholder: no image was composed in.
    Placeholder,
    /// A checked image.
    Image(Located),
    /// Bytes that are neither.
    Invalid(FormatError),
}

/// A boot image with where it lies in the root task's image.
pub struct Located {
    pub image: BootImage<'static>,
    /// Page index of the boot image's first byte among bootinfo's `userImageFrames`.
    pub first_page: u32,
}

/// The lowest address of the root task's image and `__apps_start`.
#[cfg(target_os = "none")]
fn addresses() -> (u64, u64) {
    // Only the addresses of the linker symbols are taken; nothing is read through them.
    (core::ptr::addr_of!(__image_start) as u64, core::ptr::addr_of!(__apps_start) as u64)
}

#[cfg(not(target_os = "none"))]
fn addresses() -> (u64, u64) {
    let start = APPS_PLACEHOLDER.as_ptr() as u64;
    (start, start)
}

/// Looks at the bytes from `__apps_start` to the end of the loaded image.
pub fn find(bootinfo: &BootInfo<'_>) -> Contents {
    let (image_start, apps_start) = addresses();
    let image_end = image_start + bootinfo.user_image_frames().len() * PAGE_SIZE;
    let available = image_end.saturating_sub(apps_start) as usize;
    if available < PAGE_SIZE as usize {
        return Contents::Invalid(FormatError::TooShort);
    }
    // SAFETY: the kernel mapped every page of the root task's image, `image_start ..
    // image_end` (one frame cap per page in `userImageFrames`), readable for the root task's
    // whole life, and nothing writes the apps segment: it is read-only and no Rust object lives
    // there except the placeholder, which is only read. The pointer comes from the linker symbol,
    // not from the placeholder static, so the compiler cannot assume the bytes are its zeroes.
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(apps_start as *const u8, available) };
    if bytes[..PAGE_SIZE as usize].iter().all(|&b| b == 0) {
        return Contents::Placeholder;
    }
    match BootImage::parse(bytes) {
        Ok(image) => {
            Contents::Image(Located { image, first_page: ((apps_start - image_start) / PAGE_SIZE) as u32 })
        }
        Err(error) => Contents::Invalid(error),
    }
}
