//! Capability invocations. Each one is built as a [`Request`] by a pure function (checked on
//! the host) and performed by [`invoke`]: MR0–3 in registers, the rest and the extra caps in the
//! IPC buffer, then `Call`; a non-zero reply label becomes an [`Error`].
//!
//! Argument order and cap positions follow the method declarations in the interface XML:
//! parameters of cap type travel as extra caps, everything else as message words in order.

use crate::abi::{InvocationLabel, ObjectType, MESSAGE_REGISTERS_IN_CPU, USER_CONTEXT_WORDS};
use crate::cap::{
    AsidPool, CNode, CPtr, CapRights, Endpoint, Frame, IoPort, IrqControl, IrqHandler, Notification,
    PageDirectory, PageTable, Pdpt, Pml4, Tcb, Untyped, VmAttributes,
};
use crate::error::{Error, Result};
use crate::ipc_buffer;
use crate::message::MessageInfo;
use crate::syscall::{self, Received, RegisterMessage};

/// Most message words any request here sends (TCB WriteRegisters: 2 + 19).
pub const MAX_REQUEST_WORDS: usize = 2 + USER_CONTEXT_WORDS;
const MAX_EXTRA_CAPS: usize = crate::abi::ipc_buffer::MSG_MAX_EXTRA_CAPS;

/// An invocation ready to send: label, message words and extra caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    label: InvocationLabel,
    words: [u64; MAX_REQUEST_WORDS],
    length: usize,
    caps: [CPtr; MAX_EXTRA_CAPS],
    cap_count: usize,
}

impl Request {
    /// An empty request with this label.
    pub const fn new(label: InvocationLabel) -> Request {
        Request {
            label,
            words: [0; MAX_REQUEST_WORDS],
            length: 0,
            caps: [CPtr::NULL; MAX_EXTRA_CAPS],
            cap_count: 0,
        }
    }

    /// Appends a message word.
    ///
    /// # Panics
    /// Past [`MAX_REQUEST_WORDS`].
    pub fn word(mut self, value: u64) -> Request {
        assert!(self.length < MAX_REQUEST_WORDS, "request too long");
        self.words[self.length] = value;
        self.length += 1;
        self
    }

    /// Appends an extra cap.
    ///
    /// # Panics
    /// Past three caps.
    pub fn cap(mut self, cap: impl Into<CPtr>) -> Request {
        assert!(self.cap_count < MAX_EXTRA_CAPS, "too many extra caps");
        self.caps[self.cap_count] = cap.into();
        self.cap_count += 1;
        self
    }

    /// The invocation label.
    pub fn label(&self) -> InvocationLabel {
        self.label
    }

    /// The message words.
    pub fn words(&self) -> &[u64] {
        &self.words[..self.length]
    }

    /// The extra caps.
    pub fn caps(&self) -> &[CPtr] {
        &self.caps[..self.cap_count]
    }

    /// The message info word for this request.
    pub fn message_info(&self) -> MessageInfo {
        MessageInfo::new(self.label.value(), 0, self.cap_count as u64, self.length as u64)
    }

    /// Message registers 0–3 (zero past the length).
    pub fn register_message(&self) -> RegisterMessage {
        let mut registers = [0; MESSAGE_REGISTERS_IN_CPU];
        registers.copy_from_slice(&self.words[..MESSAGE_REGISTERS_IN_CPU]);
        registers
    }
}

/// The message info and CPU message registers of an invocation given as its parts: what
/// [`Request::message_info`] and [`Request::register_message`] give for the same request.
#[inline(always)]
fn message_of_parts<const W: usize, const C: usize>(
    label: InvocationLabel,
    words: &[u64; W],
) -> (MessageInfo, RegisterMessage) {
    let mut registers = [0; MESSAGE_REGISTERS_IN_CPU];
    for (register, word) in registers.iter_mut().zip(words) {
        *register = *word;
    }
    (MessageInfo::new(label.value(), 0, C as u64, W as u64), registers)
}

/// Performs an invocation given as its parts (label, message words, extra caps), with no
/// [`Request`] built. The fault path's calls (`Page_Map`, `Page_Unmap`, `CNode_Copy`,
/// `CNode_Delete`) go this way: a `Request` is a 200-byte value that its builder copies at each
/// step, and building one cost a fault some 300 instructions of `memcpy` and `memset` (the
/// profile in ARCHITECTURE.md's Measuring).
#[inline(always)]
fn invoke_parts<const W: usize, const C: usize>(
    target: CPtr,
    label: InvocationLabel,
    words: [u64; W],
    caps: [CPtr; C],
) -> Result<Received> {
    for (index, word) in words.iter().enumerate().skip(MESSAGE_REGISTERS_IN_CPU) {
        ipc_buffer::set_message_register(index, *word);
    }
    for (index, cap) in caps.iter().enumerate() {
        ipc_buffer::set_extra_cap(index, *cap);
    }
    let (info, registers) = message_of_parts::<W, C>(label, &words);
    let reply = syscall::call(target, info, registers);
    match Error::from_reply(reply.info, |index| reply.message_register(index)) {
        None => Ok(reply),
        Some(error) => Err(error),
    }
}

/// Performs `request` on the cap `target` and returns the kernel's reply.
pub fn invoke(target: CPtr, request: &Request) -> Result<Received> {
    for (index, word) in request.words().iter().enumerate().skip(MESSAGE_REGISTERS_IN_CPU) {
        ipc_buffer::set_message_register(index, *word);
    }
    for (index, cap) in request.caps().iter().enumerate() {
        ipc_buffer::set_extra_cap(index, *cap);
    }
    let reply = syscall::call(target, request.message_info(), request.register_message());
    match Error::from_reply(reply.info, |index| reply.message_register(index)) {
        None => Ok(reply),
        Some(error) => Err(error),
    }
}

/// Register state of a thread (`seL4_UserContext`), in the order the kernel reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct UserContext {
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub tls_base: u64,
}

impl UserContext {
    /// The registers as message words.
    pub fn to_words(&self) -> [u64; USER_CONTEXT_WORDS] {
        [
            self.rip,
            self.rsp,
            self.rflags,
            self.rax,
            self.rbx,
            self.rcx,
            self.rdx,
            self.rsi,
            self.rdi,
            self.rbp,
            self.r8,
            self.r9,
            self.r10,
            self.r11,
            self.r12,
            self.r13,
            self.r14,
            self.r15,
            self.tls_base,
        ]
    }

    /// Registers from message words (missing words read as 0).
    pub fn from_words(mut word: impl FnMut(usize) -> u64) -> UserContext {
        UserContext {
            rip: word(0),
            rsp: word(1),
            rflags: word(2),
            rax: word(3),
            rbx: word(4),
            rcx: word(5),
            rdx: word(6),
            rsi: word(7),
            rdi: word(8),
            rbp: word(9),
            r8: word(10),
            r9: word(11),
            r10: word(12),
            r11: word(13),
            r12: word(14),
            r13: word(15),
            r14: word(16),
            r15: word(17),
            tls_base: word(18),
        }
    }
}

/// Priority and maximum controlled priority, packed as `seL4_PrioProps`.
pub const fn priority_word(priority: u8, max_controlled_priority: u8) -> u64 {
    (priority as u64) | (max_controlled_priority as u64) << 8
}

impl Untyped {
    /// `Untyped_Retype` request: `count` objects of `object_type` into slots
    /// `node_offset..node_offset + count` of the CNode found at `node_index`/`node_depth` in
    /// `root` (depth 0: `root` itself).
    pub fn retype_request(
        object_type: ObjectType,
        size_bits: u8,
        root: CNode,
        node_index: u64,
        node_depth: u8,
        node_offset: u64,
        count: u64,
    ) -> Request {
        Request::new(InvocationLabel::UntypedRetype)
            .word(object_type.value())
            .word(u64::from(size_bits))
            .cap(root)
            .word(node_index)
            .word(u64::from(node_depth))
            .word(node_offset)
            .word(count)
    }

    /// Performs [`Untyped::retype_request`] on this untyped.
    #[allow(clippy::too_many_arguments)] // the kernel method's own parameter list
    pub fn retype(
        self,
        object_type: ObjectType,
        size_bits: u8,
        root: CNode,
        node_index: u64,
        node_depth: u8,
        node_offset: u64,
        count: u64,
    ) -> Result<()> {
        let request =
            Self::retype_request(object_type, size_bits, root, node_index, node_depth, node_offset, count);
        invoke(self.cptr(), &request).map(drop)
    }
}

impl CNode {
    /// `CNode_Copy` request: copy the cap at `source` into `destination`, with `rights` masked.
    pub fn copy_request(
        destination_index: u64,
        destination_depth: u8,
        source_root: CNode,
        source_index: u64,
        source_depth: u8,
        rights: CapRights,
    ) -> Request {
        Request::new(InvocationLabel::CNodeCopy)
            .word(destination_index)
            .word(u64::from(destination_depth))
            .cap(source_root)
            .word(source_index)
            .word(u64::from(source_depth))
            .word(rights.to_word())
    }

    /// Performs [`CNode::copy_request`] with this CNode as the destination root.
    pub fn copy(
        self,
        destination_index: u64,
        destination_depth: u8,
        source_root: CNode,
        source_index: u64,
        source_depth: u8,
        rights: CapRights,
    ) -> Result<()> {
        // As `copy_request` (checked equal in the tests), without building it.
        let words = [
            destination_index,
            u64::from(destination_depth),
            source_index,
            u64::from(source_depth),
            rights.to_word(),
        ];
        invoke_parts(self.cptr(), InvocationLabel::CNodeCopy, words, [source_root.cptr()]).map(drop)
    }

    /// `CNode_Mint` request: like copy, and sets the badge (endpoints, notifications) or guard
    /// (CNodes) from `badge`.
    #[allow(clippy::too_many_arguments)]
    pub fn mint_request(
        destination_index: u64,
        destination_depth: u8,
        source_root: CNode,
        source_index: u64,
        source_depth: u8,
        rights: CapRights,
        badge: u64,
    ) -> Request {
        Self::copy_request(
            destination_index,
            destination_depth,
            source_root,
            source_index,
            source_depth,
            rights,
        )
        .relabel(InvocationLabel::CNodeMint)
        .word(badge)
    }

    /// Performs [`CNode::mint_request`] with this CNode as the destination root.
    #[allow(clippy::too_many_arguments)]
    pub fn mint(
        self,
        destination_index: u64,
        destination_depth: u8,
        source_root: CNode,
        source_index: u64,
        source_depth: u8,
        rights: CapRights,
        badge: u64,
    ) -> Result<()> {
        let request = Self::mint_request(
            destination_index,
            destination_depth,
            source_root,
            source_index,
            source_depth,
            rights,
            badge,
        );
        invoke(self.cptr(), &request).map(drop)
    }

    /// `CNode_Delete` request.
    pub fn delete_request(index: u64, depth: u8) -> Request {
        Request::new(InvocationLabel::CNodeDelete).word(index).word(u64::from(depth))
    }

    /// Deletes the cap at `index`/`depth` in this CNode.
    pub fn delete(self, index: u64, depth: u8) -> Result<()> {
        let words = [index, u64::from(depth)];
        invoke_parts(self.cptr(), InvocationLabel::CNodeDelete, words, []).map(drop)
    }

    /// `CNode_Revoke` request.
    pub fn revoke_request(index: u64, depth: u8) -> Request {
        Request::new(InvocationLabel::CNodeRevoke).word(index).word(u64::from(depth))
    }

    /// Deletes every cap derived from the cap at `index`/`depth` in this CNode.
    pub fn revoke(self, index: u64, depth: u8) -> Result<()> {
        invoke(self.cptr(), &Self::revoke_request(index, depth)).map(drop)
    }
}

impl Request {
    fn relabel(mut self, label: InvocationLabel) -> Request {
        self.label = label;
        self
    }
}

impl Frame {
    /// `X86_Page_Map` request.
    pub fn map_request(vspace: Pml4, address: u64, rights: CapRights, attributes: VmAttributes) -> Request {
        Request::new(InvocationLabel::X86PageMap)
            .cap(vspace)
            .word(address)
            .word(rights.to_word())
            .word(attributes as u64)
    }

    /// Maps this frame at `address` in `vspace`. A missing paging level fails with
    /// `FailedLookup` (see [`Error::missing_level_bits_left`]).
    pub fn map(self, vspace: Pml4, address: u64, rights: CapRights, attributes: VmAttributes) -> Result<()> {
        let words = [address, rights.to_word(), attributes as u64];
        invoke_parts(self.cptr(), InvocationLabel::X86PageMap, words, [vspace.cptr()]).map(drop)
    }

    /// `X86_Page_Unmap` request.
    pub fn unmap_request() -> Request {
        Request::new(InvocationLabel::X86PageUnmap)
    }

    /// Unmaps this frame (a no-op if it is not mapped).
    pub fn unmap(self) -> Result<()> {
        invoke_parts(self.cptr(), InvocationLabel::X86PageUnmap, [], []).map(drop)
    }

    /// `X86_Page_GetAddress` request.
    pub fn address_request() -> Request {
        Request::new(InvocationLabel::X86PageGetAddress)
    }

    /// Physical address of this frame.
    pub fn physical_address(self) -> Result<u64> {
        invoke(self.cptr(), &Self::address_request()).map(|reply| reply.registers[0])
    }
}

macro_rules! paging_structure_map {
    ($type:ident, $map:ident, $unmap:ident) => {
        impl $type {
            /// Map request: `vspace` as the extra cap, then the address and attributes.
            pub fn map_request(vspace: Pml4, address: u64, attributes: VmAttributes) -> Request {
                Request::new(InvocationLabel::$map).cap(vspace).word(address).word(attributes as u64)
            }

            /// Installs this paging structure in `vspace` to cover `address`.
            pub fn map(self, vspace: Pml4, address: u64, attributes: VmAttributes) -> Result<()> {
                invoke(self.cptr(), &Self::map_request(vspace, address, attributes)).map(drop)
            }

            /// Unmap request.
            pub fn unmap_request() -> Request {
                Request::new(InvocationLabel::$unmap)
            }

            /// Removes this paging structure from its VSpace.
            pub fn unmap(self) -> Result<()> {
                invoke(self.cptr(), &Self::unmap_request()).map(drop)
            }
        }
    };
}

paging_structure_map!(PageTable, X86PageTableMap, X86PageTableUnmap);
paging_structure_map!(PageDirectory, X86PageDirectoryMap, X86PageDirectoryUnmap);
paging_structure_map!(Pdpt, X86PdptMap, X86PdptUnmap);

impl AsidPool {
    /// `X86_ASIDPool_Assign` request.
    pub fn assign_request(vspace: Pml4) -> Request {
        Request::new(InvocationLabel::X86AsidPoolAssign).cap(vspace)
    }

    /// Gives `vspace` an ASID from this pool; nothing maps into a PML4 before this.
    pub fn assign(self, vspace: Pml4) -> Result<()> {
        invoke(self.cptr(), &Self::assign_request(vspace)).map(drop)
    }
}

impl IoPort {
    /// `X86_IOPort_Out8` request.
    pub fn out8_request(port: u16, value: u8) -> Request {
        Request::new(InvocationLabel::X86IoPortOut8).word(u64::from(port)).word(u64::from(value))
    }

    /// Writes `value` to I/O port `port`.
    pub fn out8(self, port: u16, value: u8) -> Result<()> {
        invoke(self.cptr(), &Self::out8_request(port, value)).map(drop)
    }

    /// `X86_IOPort_In8` request.
    pub fn in8_request(port: u16) -> Request {
        Request::new(InvocationLabel::X86IoPortIn8).word(u64::from(port))
    }

    /// Reads I/O port `port`.
    pub fn in8(self, port: u16) -> Result<u8> {
        invoke(self.cptr(), &Self::in8_request(port)).map(|reply| reply.registers[0] as u8)
    }
}

impl IrqControl {
    /// `X86_IRQControl_GetIOAPIC` request (`X86IRQIssueIRQHandlerIOAPIC`).
    #[allow(clippy::too_many_arguments)]
    pub fn get_ioapic_request(
        root: CNode,
        index: u64,
        depth: u8,
        ioapic: u64,
        pin: u64,
        level: bool,
        polarity: bool,
        vector: u64,
    ) -> Request {
        Request::new(InvocationLabel::X86IrqIssueIrqHandlerIoapic)
            .cap(root)
            .word(index)
            .word(u64::from(depth))
            .word(ioapic)
            .word(pin)
            .word(u64::from(level))
            .word(u64::from(polarity))
            .word(vector)
    }

    /// Makes, in slot `index` (at `depth`) of `root`, a handler for I/O APIC `ioapic`'s input
    /// `pin`: `level` triggered (else edge), active low when `polarity` (else high), delivered as
    /// user interrupt number `vector` (the kernel adds its own offset).
    #[allow(clippy::too_many_arguments)]
    pub fn get_ioapic(
        self,
        root: CNode,
        index: u64,
        depth: u8,
        ioapic: u64,
        pin: u64,
        level: bool,
        polarity: bool,
        vector: u64,
    ) -> Result<()> {
        let request = Self::get_ioapic_request(root, index, depth, ioapic, pin, level, polarity, vector);
        invoke(self.cptr(), &request).map(drop)
    }
}

impl IrqHandler {
    /// `IRQHandler_Ack` request.
    pub fn ack_request() -> Request {
        Request::new(InvocationLabel::IrqAckIrq)
    }

    /// Lets the interrupt be delivered again (the kernel masks it until then).
    pub fn ack(self) -> Result<()> {
        invoke(self.cptr(), &Self::ack_request()).map(drop)
    }

    /// `IRQHandler_SetNotification` request.
    pub fn set_notification_request(notification: Notification) -> Request {
        Request::new(InvocationLabel::IrqSetIrqHandler).cap(notification)
    }

    /// Signals `notification` (with its cap's badge) on each interrupt.
    pub fn set_notification(self, notification: Notification) -> Result<()> {
        invoke(self.cptr(), &Self::set_notification_request(notification)).map(drop)
    }
}

/// Arguments of `TCB_Configure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbConfiguration {
    /// CPtr of the fault endpoint, resolved in the thread's own CSpace at fault time.
    pub fault_endpoint: CPtr,
    /// Scheduling priority.
    pub priority: u8,
    /// Maximum priority the thread may give.
    pub max_controlled_priority: u8,
    /// Root of the thread's CSpace.
    pub cspace_root: CNode,
    /// New guard for the CSpace root (`guard << 8 | guard size << 2`), 0 to keep the cap's.
    pub cspace_root_data: u64,
    /// Root of the thread's VSpace.
    pub vspace_root: Pml4,
    /// 0 (x86 VSpace roots take no data).
    pub vspace_root_data: u64,
    /// Virtual address of the IPC buffer, 0 for none.
    pub ipc_buffer_address: u64,
    /// Frame holding the IPC buffer ([`CPtr::NULL`] for none).
    pub ipc_buffer_frame: CPtr,
}

impl Tcb {
    /// `TCB_Configure` request.
    pub fn configure_request(configuration: &TcbConfiguration) -> Request {
        Request::new(InvocationLabel::TcbConfigure)
            .word(configuration.fault_endpoint.bits())
            .word(priority_word(configuration.priority, configuration.max_controlled_priority))
            .cap(configuration.cspace_root)
            .word(configuration.cspace_root_data)
            .cap(configuration.vspace_root)
            .word(configuration.vspace_root_data)
            .word(configuration.ipc_buffer_address)
            .cap(configuration.ipc_buffer_frame)
    }

    /// Sets the thread's fault endpoint, priorities, CSpace, VSpace and IPC buffer.
    pub fn configure(self, configuration: &TcbConfiguration) -> Result<()> {
        invoke(self.cptr(), &Self::configure_request(configuration)).map(drop)
    }

    /// `TCB_WriteRegisters` request for the first `count` registers of `context`.
    pub fn write_registers_request(
        resume: bool,
        arch_flags: u8,
        count: usize,
        context: &UserContext,
    ) -> Request {
        let count = count.min(USER_CONTEXT_WORDS);
        // resume_target and arch_flags share the first word, one byte each.
        let mut request = Request::new(InvocationLabel::TcbWriteRegisters)
            .word(u64::from(resume) | u64::from(arch_flags) << 8)
            .word(count as u64);
        for word in &context.to_words()[..count] {
            request = request.word(*word);
        }
        request
    }

    /// Writes the thread's registers; `resume` also starts it.
    pub fn write_registers(self, resume: bool, count: usize, context: &UserContext) -> Result<()> {
        let request = Self::write_registers_request(resume, 0, count, context);
        invoke(self.cptr(), &request).map(drop)
    }

    /// `TCB_ReadRegisters` request.
    pub fn read_registers_request(suspend: bool, count: usize) -> Request {
        Request::new(InvocationLabel::TcbReadRegisters)
            .word(u64::from(suspend))
            .word(count.min(USER_CONTEXT_WORDS) as u64)
    }

    /// Reads the thread's registers; `suspend` stops it first.
    pub fn read_registers(self, suspend: bool) -> Result<UserContext> {
        let request = Self::read_registers_request(suspend, USER_CONTEXT_WORDS);
        let reply = invoke(self.cptr(), &request)?;
        let length = reply.info.length() as usize;
        Ok(UserContext::from_words(|index| if index < length { reply.message_register(index) } else { 0 }))
    }

    /// `TCB_SetPriority` request.
    pub fn set_priority_request(priority: u8) -> Request {
        Request::new(InvocationLabel::TcbSetPriority).word(u64::from(priority))
    }

    /// Sets the priority (at most the caller's maximum controlled priority).
    pub fn set_priority(self, priority: u8) -> Result<()> {
        invoke(self.cptr(), &Self::set_priority_request(priority)).map(drop)
    }

    /// `TCB_Resume` request.
    pub fn resume_request() -> Request {
        Request::new(InvocationLabel::TcbResume)
    }

    /// Makes the thread runnable.
    pub fn resume(self) -> Result<()> {
        invoke(self.cptr(), &Self::resume_request()).map(drop)
    }

    /// `TCB_BindNotification` request.
    pub fn bind_notification_request(notification: Notification) -> Request {
        Request::new(InvocationLabel::TcbBindNotification).cap(notification)
    }

    /// Binds `notification` to the thread: a signal wakes it from a receive on any endpoint, the
    /// notification's word arriving as the badge.
    pub fn bind_notification(self, notification: Notification) -> Result<()> {
        invoke(self.cptr(), &Self::bind_notification_request(notification)).map(drop)
    }

    /// `TCB_Suspend` request.
    pub fn suspend_request() -> Request {
        Request::new(InvocationLabel::TcbSuspend)
    }

    /// Stops the thread.
    pub fn suspend(self) -> Result<()> {
        invoke(self.cptr(), &Self::suspend_request()).map(drop)
    }
}

impl Endpoint {
    /// Blocking send of `info` with MR0–3 (longer messages: set the rest in the IPC buffer).
    pub fn send(self, info: MessageInfo, message: RegisterMessage) {
        syscall::send(self.cptr(), info, message);
    }

    /// Send only if someone waits.
    pub fn nb_send(self, info: MessageInfo, message: RegisterMessage) {
        syscall::nb_send(self.cptr(), info, message);
    }

    /// Send and wait for the reply.
    pub fn call(self, info: MessageInfo, message: RegisterMessage) -> Received {
        syscall::call(self.cptr(), info, message)
    }

    /// Wait for a message.
    pub fn recv(self) -> Received {
        syscall::recv(self.cptr())
    }

    /// Reply to the last caller (or faulting thread), then wait here.
    pub fn reply_recv(self, info: MessageInfo, message: RegisterMessage) -> Received {
        syscall::reply_recv(self.cptr(), info, message)
    }
}

/// Reply to the last caller or faulting thread through the implicit reply cap.
pub fn reply(info: MessageInfo, message: RegisterMessage) {
    syscall::reply(info, message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::init;

    /// The fault path's calls, sent as parts, carry what their requests would.
    #[test]
    fn parts_match_their_requests() {
        let pml4 = Pml4::new(9);
        let map = Frame::map_request(pml4, 0x40_1000, CapRights::READ, VmAttributes::default());
        let words = [0x40_1000, CapRights::READ.to_word(), VmAttributes::default() as u64];
        assert_eq!(map.words(), words);
        assert_eq!(map.caps(), [pml4.cptr()]);
        let parts = message_of_parts::<3, 1>(InvocationLabel::X86PageMap, &words);
        assert_eq!(parts, (map.message_info(), map.register_message()));

        let copy = CNode::copy_request(5, 16, init::CNODE, 7, 16, CapRights::READ_WRITE);
        let words = [5, 16, 7, 16, CapRights::READ_WRITE.to_word()];
        assert_eq!(copy.words(), words);
        assert_eq!(copy.caps(), [init::CNODE.cptr()]);
        let parts = message_of_parts::<5, 1>(InvocationLabel::CNodeCopy, &words);
        assert_eq!(parts, (copy.message_info(), copy.register_message()));

        let delete = CNode::delete_request(5, 16);
        assert_eq!(delete.words(), [5, 16]);
        let parts = message_of_parts::<2, 0>(InvocationLabel::CNodeDelete, &[5, 16]);
        assert_eq!(parts, (delete.message_info(), delete.register_message()));
        let unmap = Frame::unmap_request();
        let parts = message_of_parts::<0, 0>(InvocationLabel::X86PageUnmap, &[]);
        assert_eq!(parts, (unmap.message_info(), unmap.register_message()));
    }

    #[test]
    fn retype_puts_the_root_in_extra_cap_zero() {
        let request = Untyped::retype_request(ObjectType::Page4K, 12, init::CNODE, 0, 0, 300, 16);
        assert_eq!(request.label().value(), 1);
        assert_eq!(request.words(), &[7, 12, 0, 0, 300, 16]);
        assert_eq!(request.caps(), &[CPtr::new(2)]);
        let info = request.message_info();
        assert_eq!((info.label(), info.extra_caps(), info.length()), (1, 1, 6));
        assert_eq!(request.register_message(), [7, 12, 0, 0]);
    }

    #[test]
    fn cnode_copy_and_mint() {
        let copy = CNode::copy_request(400, 64, init::CNODE, 300, 64, CapRights::READ_WRITE);
        assert_eq!(copy.label().value(), 17);
        assert_eq!(copy.words(), &[400, 64, 300, 64, 3]);
        assert_eq!(copy.caps(), &[CPtr::new(2)]);

        let mint = CNode::mint_request(401, 64, init::CNODE, 300, 64, CapRights::ALL, 0x42);
        assert_eq!(mint.label().value(), 18);
        assert_eq!(mint.words(), &[401, 64, 300, 64, 7, 0x42]);

        assert_eq!(CNode::delete_request(400, 64).words(), &[400, 64]);
        assert_eq!(CNode::delete_request(400, 64).label().value(), 15);
        assert_eq!(CNode::revoke_request(400, 64).label().value(), 14);
    }

    #[test]
    fn page_and_paging_structure_maps() {
        let map =
            Frame::map_request(init::VSPACE, 0x4000_0000, CapRights::READ_WRITE, VmAttributes::WriteBack);
        assert_eq!(map.label().value(), 37);
        assert_eq!(map.words(), &[0x4000_0000, 3, 0]);
        assert_eq!(map.caps(), &[CPtr::new(3)]);
        assert_eq!(Frame::unmap_request().label().value(), 39);
        assert_eq!(Frame::unmap_request().message_info().length(), 0);

        let table = PageTable::map_request(init::VSPACE, 0x4000_0000, VmAttributes::default());
        assert_eq!(table.label().value(), 33);
        assert_eq!(table.words(), &[0x4000_0000, 0]);
        assert_eq!(table.caps(), &[CPtr::new(3)]);
        assert_eq!(PageDirectory::map_request(init::VSPACE, 0, VmAttributes::default()).label().value(), 30);
        assert_eq!(Pdpt::map_request(init::VSPACE, 0, VmAttributes::default()).label().value(), 28);
    }

    #[test]
    fn asid_assign_and_io_port() {
        let assign = AsidPool::assign_request(Pml4::new(500));
        assert_eq!(assign.label().value(), 43);
        assert_eq!(assign.words(), &[] as &[u64]);
        assert_eq!(assign.caps(), &[CPtr::new(500)]);

        let out = IoPort::out8_request(0xf4, 0x10);
        assert_eq!(out.label().value(), 47);
        assert_eq!(out.words(), &[0xf4, 0x10]);
    }

    #[test]
    fn tcb_configure_layout() {
        let request = Tcb::configure_request(&TcbConfiguration {
            fault_endpoint: CPtr::new(600),
            priority: 100,
            max_controlled_priority: 100,
            cspace_root: init::CNODE,
            cspace_root_data: 0,
            vspace_root: init::VSPACE,
            vspace_root_data: 0,
            ipc_buffer_address: 0,
            ipc_buffer_frame: CPtr::NULL,
        });
        assert_eq!(request.label().value(), 5);
        assert_eq!(request.words(), &[600, 100 | 100 << 8, 0, 0, 0]);
        assert_eq!(request.caps(), &[CPtr::new(2), CPtr::new(3), CPtr::NULL]);
        assert_eq!(request.message_info().extra_caps(), 3);
    }

    #[test]
    fn tcb_write_registers_layout() {
        let context =
            UserContext { rip: 0x401000, rsp: 0x500000, rdi: 9, tls_base: 77, ..UserContext::default() };
        let request = Tcb::write_registers_request(true, 0, USER_CONTEXT_WORDS, &context);
        assert_eq!(request.label().value(), 3);
        let words = request.words();
        assert_eq!(words.len(), 21);
        assert_eq!(&words[..4], &[1, 19, 0x401000, 0x500000]);
        assert_eq!(words[2 + 8], 9);
        assert_eq!(words[20], 77);

        let short = Tcb::write_registers_request(false, 0, 2, &context);
        assert_eq!(short.words(), &[0, 2, 0x401000, 0x500000]);
    }

    #[test]
    fn tcb_small_invocations() {
        assert_eq!(Tcb::set_priority_request(200).words(), &[200]);
        assert_eq!(Tcb::set_priority_request(200).label().value(), 6);
        assert_eq!(Tcb::resume_request().label().value(), 11);
        assert_eq!(Tcb::suspend_request().label().value(), 10);
        assert_eq!(Tcb::read_registers_request(true, 19).words(), &[1, 19]);
    }

    #[test]
    fn user_context_round_trip() {
        let words: Vec<u64> = (1..=19).collect();
        let context = UserContext::from_words(|index| words[index]);
        assert_eq!(context.rip, 1);
        assert_eq!(context.tls_base, 19);
        assert_eq!(context.to_words().to_vec(), words);
    }
}
