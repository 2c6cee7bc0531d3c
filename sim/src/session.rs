//! A client session: the pager and the model kernel wired together, with a CPU's-eye view of memory.
//!
//! [`Session::touch`] does what the CPU and kernel do for a client's access: go straight to memory when
//! the page is mapped with the rights needed, otherwise raise a page fault with a real x86 error code,
//! let the seL4 binding's decoding ([`sel4::VmFault::access`]) classify it as the root task does,
//! deliver it to the pager and restart the access once.

use abi::{AppLayout, Attachment};
use pager::{
    Access, AppAreaError, AreaKind, ClientId, EvictMode, Fault, FaultRefusal, FaultResolution, ImageId,
    Pager, PagerConfig, PagerError, Policy, Rights, ShareError, SharedId, TeardownReport, PAGE_SIZE,
};
use sel4::error_code;

use crate::boot::BootImage;
use crate::kernel::{MemoryFault, ModelConfig, ModelKernel};

/// The instruction pointer a data access is reported with: any address off the accessed page works,
/// since only a fault on the IP's own page is classed as an instruction fetch.
const DATA_ACCESS_IP: u64 = 0x0040_0000;

/// What a touch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Touched {
    /// The byte at the touched address (after the access, for a write).
    pub byte: u8,
    /// The fault the pager served on the way, if the page was not accessible at first.
    pub fault: Option<FaultResolution>,
}

/// Why a client's access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TouchError {
    /// The pager refused the fault: on seL4 the client would be stopped.
    Refused(FaultRefusal),
    /// The pager said it served the fault but the restarted access faulted again: a pager bug (on seL4
    /// the client would fault forever).
    FaultedAgain { fault: MemoryFault, resolution: FaultResolution },
}

impl TouchError {
    /// The refusal, when the pager refused.
    pub fn refusal(&self) -> Option<&FaultRefusal> {
        match self {
            Self::Refused(refusal) => Some(refusal),
            Self::FaultedAgain { .. } => None,
        }
    }
}

/// The pager serving clients on the model kernel.
pub struct Session<'img, P: Policy = pager::BuiltinPolicy> {
    /// The pager under test.
    pub pager: Pager<'img, P>,
    /// The model kernel it runs on.
    pub kernel: ModelKernel,
    images: Vec<ImageId>,
    faults_delivered: u64,
}

impl<'img, P: Policy> Session<'img, P> {
    /// A pager with every file of `boot` registered as an image (image `n` is file `n`), on a model
    /// kernel whose image frames are `boot`'s pages.
    pub fn new(
        boot: &'img BootImage,
        pager_config: PagerConfig,
        kernel_config: ModelConfig,
        policy: P,
    ) -> Result<Self, PagerError> {
        let mut pager = Pager::new(pager_config, policy);
        let mut images = Vec::with_capacity(boot.files().len());
        for (index, packed) in boot.files().iter().enumerate() {
            images.push(pager.add_image(boot.file(index), packed.first_page)?);
        }
        let kernel = ModelKernel::new(kernel_config, boot.bytes());
        Ok(Self { pager, kernel, images, faults_delivered: 0 })
    }

    /// The pager's id for boot-image file `index`.
    pub fn image(&self, index: usize) -> ImageId {
        self.images[index]
    }

    /// Faults delivered to the pager so far.
    pub fn faults_delivered(&self) -> u64 {
        self.faults_delivered
    }

    /// Adds a client with an empty address space.
    pub fn add_client(&mut self, budget: Option<u32>) -> Result<ClientId, PagerError> {
        let client = self.pager.add_client(budget)?;
        self.kernel.create_address_space(client);
        Ok(client)
    }

    /// Adds a client running `image`: an area per loadable segment.
    pub fn spawn(&mut self, image: ImageId, budget: Option<u32>) -> Result<ClientId, PagerError> {
        let client = self.add_client(budget)?;
        if let Err(error) = self.pager.load_image(client, image) {
            self.remove_client(client)?;
            return Err(error);
        }
        Ok(client)
    }

    /// Adds a client running `image` (an area per loadable segment) whose pages are replaced by
    /// `evict` when it reaches `budget` or the pool is exhausted.
    pub fn spawn_evicting(
        &mut self,
        image: ImageId,
        budget: Option<u32>,
        evict: EvictMode,
    ) -> Result<ClientId, PagerError> {
        let client = self.pager.add_client_evicting(budget, evict)?;
        self.kernel.create_address_space(client);
        if let Err(error) = self.pager.load_image(client, image) {
            self.remove_client(client)?;
            return Err(error);
        }
        Ok(client)
    }

    /// Adds a client running `image` laid out as an app instance is on seL4: the app ABI's list of
    /// its areas ([`abi::app_areas`]: segments, the reserved IPC buffer page, heap, stack and its
    /// guard, regions), added by [`Pager::add_app`]. `regions[n]` is the shared object of region `n`.
    pub fn spawn_app(
        &mut self,
        image: ImageId,
        budget: Option<u32>,
        layout: &AppLayout,
        attachments: &[Attachment],
        regions: &[SharedId],
    ) -> Result<ClientId, AppAreaError> {
        let client = self.add_client(budget).map_err(|error| AppAreaError { area: None, error })?;
        if let Err(error) = self.pager.add_app(client, image, layout, attachments.iter().copied(), regions) {
            self.remove_client(client).expect("the client was just added");
            return Err(error);
        }
        Ok(client)
    }

    /// Runs the policy's start-up work (eager loading); returns the pages mapped.
    pub fn start(&mut self, client: ClientId) -> Result<u32, FaultRefusal> {
        self.pager.start_client(&mut self.kernel, client)
    }

    /// Removes a client from the pager, then destroys its address space as the root task would.
    pub fn remove_client(&mut self, client: ClientId) -> Result<TeardownReport, PagerError> {
        let report = self.pager.remove_client(&mut self.kernel, client)?;
        self.kernel.destroy_address_space(client);
        Ok(report)
    }

    /// Unmaps one page of a client through the pager.
    pub fn unmap(&mut self, client: ClientId, address: u64) -> Result<bool, PagerError> {
        self.pager.unmap(&mut self.kernel, client, address)
    }

    /// Gives the pager a client's advice about a range, as the advise call would.
    pub fn advise(
        &mut self,
        client: ClientId,
        start: u64,
        length: u64,
        advice: pager::Advice,
    ) -> Result<u32, pager::AdviseError> {
        self.pager.advise(&mut self.kernel, client, start, length, advice)
    }

    /// Shares the area of `from` at `address` into `to` at `at`.
    pub fn share(&mut self, from: ClientId, address: u64, to: ClientId, at: u64) -> Result<(), ShareError> {
        self.pager.share(from, address, to, at)
    }

    /// Creates a shared region and attaches it to each `(client, base, rights)`.
    pub fn shared_region(
        &mut self,
        size: u64,
        attach: &[(ClientId, u64, Rights)],
    ) -> Result<SharedId, PagerError> {
        let region = self.pager.create_region()?;
        for &(client, base, rights) in attach {
            self.pager.attach_region(client, region, base, size, rights, AreaKind::Region(region.0))?;
        }
        Ok(region)
    }

    /// Delivers a fault to the pager directly, as the kernel's fault IPC would.
    pub fn fault(
        &mut self,
        client: ClientId,
        address: u64,
        access: Access,
    ) -> Result<FaultResolution, FaultRefusal> {
        let present = self.kernel.mapping(client, address).is_some();
        let fault = x86_fault(address, access, present);
        self.faults_delivered += 1;
        self.pager.handle_fault(&mut self.kernel, client, fault)
    }

    /// Makes the page containing `address` accessible for `access`, faulting at most once.
    fn ensure(
        &mut self,
        client: ClientId,
        address: u64,
        access: Access,
    ) -> Result<Option<FaultResolution>, TouchError> {
        let write = access == Access::Write;
        if self.kernel.check_access(client, address, write).is_ok() {
            return Ok(None);
        }
        let resolution = self.fault(client, address, access).map_err(TouchError::Refused)?;
        match self.kernel.check_access(client, address, write) {
            Ok(()) => Ok(Some(resolution)),
            Err(fault) => Err(TouchError::FaultedAgain { fault, resolution }),
        }
    }

    /// One access by `client` at `address`, as the CPU makes it. A write stores the byte already there
    /// (like `or byte [address], 0`), so it needs write rights but changes nothing.
    pub fn touch(&mut self, client: ClientId, address: u64, access: Access) -> Result<Touched, TouchError> {
        let fault = self.ensure(client, address, access)?;
        let byte = self.kernel.read(client, address, 1).map_err(|f| self.faulted_again(f, fault))?[0];
        if access == Access::Write {
            self.kernel.write(client, address, &[byte]).map_err(|f| self.faulted_again(f, fault))?;
        }
        Ok(Touched { byte, fault })
    }

    fn faulted_again(&self, fault: MemoryFault, resolution: Option<FaultResolution>) -> TouchError {
        match resolution {
            Some(resolution) => TouchError::FaultedAgain { fault, resolution },
            // Accessible a moment ago and not now: only a model bug could do this.
            None => panic!("page became inaccessible without a fault: {fault:?}"),
        }
    }

    /// Reads `length` bytes as the client would, faulting pages in as needed.
    pub fn read(&mut self, client: ClientId, address: u64, length: usize) -> Result<Vec<u8>, TouchError> {
        self.ensure_range(client, address, length, Access::Read)?;
        Ok(self.kernel.read(client, address, length).expect("every page made accessible"))
    }

    /// Fetches `length` bytes of instructions as the client would, faulting pages in as needed.
    pub fn execute(&mut self, client: ClientId, address: u64, length: usize) -> Result<Vec<u8>, TouchError> {
        self.ensure_range(client, address, length, Access::Execute)?;
        Ok(self.kernel.read(client, address, length).expect("every page made accessible"))
    }

    /// Writes `bytes` as the client would, faulting pages in as needed.
    pub fn write(&mut self, client: ClientId, address: u64, bytes: &[u8]) -> Result<(), TouchError> {
        self.ensure_range(client, address, bytes.len(), Access::Write)?;
        self.kernel.write(client, address, bytes).expect("every page made writable");
        Ok(())
    }

    fn ensure_range(
        &mut self,
        client: ClientId,
        address: u64,
        length: usize,
        access: Access,
    ) -> Result<(), TouchError> {
        let end = address + length as u64;
        let mut at = address;
        while at < end {
            self.ensure(client, at, access)?;
            at = pager::page_align_down(at) + PAGE_SIZE;
        }
        // A later page's fault cannot take an earlier page away, but check: the pager must not.
        at = address;
        while at < end {
            let write = access == Access::Write;
            if let Err(fault) = self.kernel.check_access(client, at, write) {
                panic!("page {:#x} lost while faulting in later pages: {fault:?}", fault.address);
            }
            at = pager::page_align_down(at) + PAGE_SIZE;
        }
        Ok(())
    }
}

/// The fault the kernel reports for `access` at `address`, classified by the binding's decoding.
fn x86_fault(address: u64, access: Access, present: bool) -> Fault {
    let (ip, fsr) = match access {
        // seL4 5.0 never enables NX, so a fetch reports as a read; the IP on the page tells it apart.
        Access::Execute => (address, error_code::USER),
        Access::Read | Access::Write => {
            let ip = if pager::page_align_down(address) == DATA_ACCESS_IP {
                DATA_ACCESS_IP + PAGE_SIZE
            } else {
                DATA_ACCESS_IP
            };
            let write = if access == Access::Write { error_code::WRITE } else { 0 };
            (ip, error_code::USER | write)
        }
    };
    let fsr = fsr | if present { error_code::PRESENT } else { 0 };
    let access = match (sel4::VmFault { ip, address, prefetch: false, fsr }).access() {
        sel4::Access::Read => Access::Read,
        sel4::Access::Write => Access::Write,
        sel4::Access::Execute => Access::Execute,
    };
    Fault { address, ip, access }
}
