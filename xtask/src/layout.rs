//! Checking an image's address spaces before it boots: every app's ELF parsed by the pager's own
//! parser, then each instance's areas laid out in a [`pager::Pager`] exactly as the root task will
//! (the app ABI's list, [`abi::app_areas`], added by [`pager::Pager::add_app_area`]), so an overlap,
//! the IPC buffer page's included, is reported on the host, naming the app and both areas.

use abi::{AppArea, AppLayout, Attachment, Span};
use anyhow::{anyhow, Result};
use manifest::{App, Manifest};
use pager::{AreaError, BuiltinPolicy, ElfImage, Pager, PagerConfig, PagerError};

use crate::apps::AppElf;

/// Parses every app's ELF; the error names the manifest, the app, the ELF path and the ELF error.
pub fn parse_elfs<'a>(manifest: &Manifest, elfs: &'a [AppElf]) -> Result<Vec<ElfImage<'a>>> {
    manifest
        .apps
        .iter()
        .zip(elfs)
        .enumerate()
        .map(|(index, (app, elf))| {
            ElfImage::parse(&elf.bytes).map_err(|error| {
                anyhow!(
                    "{}: app[{index}] {:?}: {}: {error}",
                    manifest.file.display(),
                    app.name,
                    elf.path.display()
                )
            })
        })
        .collect()
}

/// An area the dry run added, described for reports.
struct Labelled {
    span: Span,
    label: String,
}

fn range(span: Span) -> String {
    format!("{:#x}..{:#x}", span.base, span.end())
}

/// The app ABI's layout of a manifest's app: its heap and stack.
fn app_layout(app: &App) -> AppLayout {
    AppLayout {
        heap: app.heap.map(|heap| Span { base: heap.base, size: heap.size }),
        stack_top: app.stack.end(),
        stack_size: app.stack.size,
    }
}

/// One instance being laid out: what its errors name, and the areas added so far.
struct Instance<'a> {
    file: String,
    index: usize,
    app: &'a App,
    instance: u16,
    added: Vec<Labelled>,
}

impl Instance<'_> {
    /// The error for a failed addition: the manifest field of the area being added (`field`, under
    /// `app[i]`), what it is, and for an overlap the area it hit.
    fn fail(&self, field: &str, what: &str, error: PagerError) -> anyhow::Error {
        let index = self.index;
        let field = if field.is_empty() { format!("app[{index}]") } else { format!("app[{index}].{field}") };
        let detail = match error {
            PagerError::Area(AreaError::Overlaps { base, size, .. }) => {
                let span = Span { base, size };
                match self.added.iter().find(|a| a.span.overlaps(&span)) {
                    Some(other) => format!("{what} overlaps the {}", other.label),
                    None => format!("{what}: {error}"),
                }
            }
            other => format!("{what}: {other}"),
        };
        anyhow!("{}: {field}: app {:?} (instance {}): {detail}", self.file, self.app.name, self.instance)
    }
}

/// The manifest field an area of the app comes from (empty: the app as a whole) and what reports
/// call it. Region areas come in the order of the app's `attach` list, so the `n`th is `attach[n]`.
fn describe(area: &AppArea, n: usize, elf: &ElfImage<'_>, manifest: &Manifest) -> (String, String) {
    let span = area.span();
    match *area {
        AppArea::Segment { index, .. } => {
            let rights = elf.segments()[usize::from(index)].rights;
            (String::new(), format!("ELF segment {index} ({}, {rights})", range(span)))
        }
        AppArea::IpcBuffer => (String::new(), format!("IPC buffer page ({})", range(span))),
        AppArea::Heap(_) => ("heap".into(), format!("heap ({})", range(span))),
        AppArea::Stack { top, size } => {
            let stack = Span::from_range(top - size, top);
            let guard = Span::from_range(span.base, stack.base);
            ("stack_top".into(), format!("stack ({}) with its guard page ({})", range(stack), range(guard)))
        }
        AppArea::Region(attachment) => {
            let region = &manifest.regions[usize::from(attachment.region)];
            (format!("attach[{n}].address"), format!("region {:?} ({})", region.name, range(span)))
        }
    }
}

/// Lays out every instance of every app in a pager with the image's capacities, through the app
/// ABI's list of its areas (the root task's path). Fails on the first conflict, naming the
/// manifest, the app, the manifest field of the area being added and both areas.
pub fn dry_run(manifest: &Manifest, elfs: &[ElfImage<'_>]) -> Result<()> {
    // As many clients as the image starts at once, as the root task configures its pager.
    let instances: usize = manifest.apps.iter().map(|app| usize::from(app.instances)).sum();
    let config = PagerConfig {
        frame_capacity: manifest.frames,
        max_clients: instances.max(PagerConfig::default().max_clients),
        ..PagerConfig::default()
    };
    let mut pager: Pager<'_, BuiltinPolicy> = Pager::new(config, BuiltinPolicy::default());
    let file = manifest.file.display().to_string();
    let mut regions = Vec::new();
    for index in 0..manifest.regions.len() {
        let shared = pager.create_region().map_err(|error| anyhow!("{file}: region[{index}]: {error}"))?;
        regions.push(shared);
    }
    for (index, (app, elf)) in manifest.apps.iter().zip(elfs).enumerate() {
        let image = pager
            .add_image(elf.bytes(), 0)
            .map_err(|error| anyhow!("{file}: app[{index}] {:?}: {error}", app.name))?;
        let attachments: Vec<Attachment> = app
            .attachments
            .iter()
            .map(|attachment| Attachment {
                region: attachment.region as u16,
                span: Span { base: attachment.address, size: manifest.regions[attachment.region].size },
                writable: attachment.writable,
            })
            .collect();
        let segments = elf.segments().iter().map(pager::Segment::span);
        let mut attached = 0;
        let areas: Vec<(AppArea, String, String)> = abi::app_areas(segments, &app_layout(app), attachments)
            .map(|area| {
                let (field, label) = describe(&area, attached, elf, manifest);
                attached += usize::from(matches!(area, AppArea::Region(_)));
                (area, field, label)
            })
            .collect();
        for instance in 0..app.instances {
            let mut this = Instance { file: file.clone(), index, app, instance, added: Vec::new() };
            let client =
                pager.add_client(app.frame_budget).map_err(|e| this.fail("instances", "client", e))?;
            for (area, field, label) in &areas {
                pager.add_app_area(client, image, area, &regions).map_err(|e| this.fail(field, label, e))?;
                this.added.push(Labelled { span: area.span(), label: label.clone() });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use super::*;

    /// A minimal ELF64 executable with the given PT_LOAD segments `(vaddr, memsz, flags)`; each
    /// segment's file bytes are one page at a matching offset.
    pub(crate) fn elf(segments: &[(u64, u64, u32)]) -> Vec<u8> {
        let count = segments.len();
        let mut bytes = vec![0u8; 4096 * (1 + count)];
        bytes[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        bytes[16..18].copy_from_slice(&2u16.to_le_bytes());
        bytes[18..20].copy_from_slice(&62u16.to_le_bytes());
        bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
        bytes[24..32].copy_from_slice(&segments[0].0.to_le_bytes());
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
        bytes[52..54].copy_from_slice(&64u16.to_le_bytes());
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
        bytes[56..58].copy_from_slice(&(count as u16).to_le_bytes());
        for (index, &(vaddr, memsz, flags)) in segments.iter().enumerate() {
            let at = 64 + index * 56;
            let offset = 4096 * (1 + index as u64) + vaddr % 4096;
            bytes[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
            bytes[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            bytes[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            bytes[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            bytes[at + 32..at + 40].copy_from_slice(&(memsz.min(4096 - vaddr % 4096)).to_le_bytes());
            bytes[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
            bytes[at + 48..at + 56].copy_from_slice(&4096u64.to_le_bytes());
        }
        bytes
    }

    fn run(manifest_text: &str, segments: &[(u64, u64, u32)]) -> Result<()> {
        let manifest = Manifest::parse(Path::new("manifests/t.toml"), manifest_text).unwrap();
        let apps: Vec<AppElf> = manifest
            .apps
            .iter()
            .map(|_| AppElf { path: "target/a.elf".into(), bytes: elf(segments) })
            .collect();
        let images = parse_elfs(&manifest, &apps)?;
        dry_run(&manifest, &images)
    }

    const TEXT_AND_DATA: &[(u64, u64, u32)] = &[(0x40_0000, 0x1000, 5), (0x40_1000, 0x3000, 6)];

    #[test]
    fn a_sound_layout_passes() {
        let manifest = r#"
            name = "ok"
            [[region]]
            name = "ring"
            size = "8K"
            [[app]]
            name = "a"
            crate = "a"
            instances = 3
            heap = "64K"
            attach = [{ region = "ring", address = 0x1000_0000, writable = true }]
        "#;
        run(manifest, TEXT_AND_DATA).unwrap();
    }

    #[test]
    fn heap_over_a_segment_names_both() {
        let manifest =
            "name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\nheap = \"8K\"\nheap_base = 0x402000\n";
        let error = run(manifest, TEXT_AND_DATA).unwrap_err().to_string();
        assert_eq!(
            error,
            "manifests/t.toml: app[0].heap: app \"a\" (instance 0): heap (0x402000..0x404000) overlaps the \
             ELF segment 1 (0x401000..0x404000, rw-)"
        );
    }

    #[test]
    fn stack_guard_over_a_segment_and_region_over_the_ipc_buffer() {
        let manifest =
            "name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\nstack = \"4K\"\nstack_top = 0x402000\n";
        let error = run(manifest, TEXT_AND_DATA).unwrap_err().to_string();
        assert!(error.contains("app[0].stack_top"), "{error}");
        assert!(error.contains("guard page (0x400000..0x401000) overlaps the ELF segment 0"), "{error}");

        // A region of two pages whose second is the IPC buffer page.
        let below = abi::IPC_BUFFER_ADDRESS - 0x1000;
        let manifest = format!(
            "name = \"x\"\n[[region]]\nname = \"big\"\nsize = \"8K\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\n\
             attach = [{{ region = \"big\", address = {below:#x} }}]\n"
        );
        let error = run(&manifest, TEXT_AND_DATA).unwrap_err().to_string();
        assert!(error.contains("app[0].attach[0].address"), "{error}");
        let region = format!("region \"big\" ({below:#x}..{:#x})", below + 0x2000);
        assert!(error.contains(&format!("{region} overlaps the IPC buffer page")), "{error}");
    }

    #[test]
    fn a_segment_on_the_ipc_buffer_page_is_reported() {
        let manifest = "name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\n";
        let ipc = abi::IPC_BUFFER_ADDRESS;
        let error = run(manifest, &[(0x40_0000, 0x1000, 5), (ipc, 0x1000, 6)]).unwrap_err().to_string();
        let page = format!("{ipc:#x}..{:#x}", ipc + abi::IPC_BUFFER_SIZE);
        assert!(error.contains(&format!("IPC buffer page ({page}) overlaps the ELF segment 1")), "{error}");
    }

    #[test]
    fn a_bad_elf_names_the_app_and_path() {
        let manifest =
            Manifest::parse(Path::new("m.toml"), "name = \"x\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\n")
                .unwrap();
        let apps = [AppElf { path: "target/a.elf".into(), bytes: vec![b'x'; 80] }];
        let error = parse_elfs(&manifest, &apps).unwrap_err().to_string();
        assert_eq!(error, "m.toml: app[0] \"a\": target/a.elf: not an ELF file (bad magic)");
    }
}
