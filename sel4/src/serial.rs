//! A 16550 UART driven through an I/O-port cap: the root task's own serial console, so that it
//! needs no debug syscall and is the only writer of its port.
//!
//! Each register access is an `X86_IOPort_In8` or `X86_IOPort_Out8` invocation. Writing a byte
//! waits for the transmit holding register to be empty, then writes it, as the kernel's own
//! console driver does (`src/plat/pc99/machine/io.c`); like that driver, a line feed is followed
//! by a carriage return, so text reads on serial exactly as it did through `DebugPutChar`.

use crate::cap::IoPort;
use crate::error::Result;

/// The first PC serial port.
pub const COM1: u16 = 0x3f8;
/// The second PC serial port (where a debug kernel's console goes in this project).
pub const COM2: u16 = 0x2f8;

/// Register offsets from the port base.
mod register {
    /// Transmit holding (write), receive buffer (read), divisor low byte (with DLAB set).
    pub const DATA: u16 = 0;
    /// Interrupt enable; divisor high byte with DLAB set.
    pub const INTERRUPT_ENABLE: u16 = 1;
    pub const LINE_CONTROL: u16 = 3;
    pub const MODEM_CONTROL: u16 = 4;
    pub const LINE_STATUS: u16 = 5;
    pub const MODEM_STATUS: u16 = 6;
}

/// Line status: the transmit holding register is empty.
const TRANSMIT_EMPTY: u8 = 0x20;
/// Line status: transmit holding register and shift register both empty.
const TRANSMITTER_IDLE: u8 = 0x40;
/// Line control: divisor latch access.
const DIVISOR_LATCH: u8 = 0x80;
/// Line control: 8 data bits, no parity, 1 stop bit.
const EIGHT_N_ONE: u8 = 0x03;
/// Modem control: DTR, RTS and OUT2.
const DTR_RTS_OUT2: u8 = 0x0b;
/// Divisor 1 of the 1.8432 MHz clock / 16: 115200 baud.
const DIVISOR_115200: u16 = 1;

/// A 16550 at `base`, reached through `ports` (a cap covering its eight registers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uart {
    ports: IoPort,
    base: u16,
}

impl Uart {
    /// The UART at `base`; nothing is touched until [`Uart::init`] or [`Uart::put_byte`].
    pub const fn new(ports: IoPort, base: u16) -> Uart {
        Uart { ports, base }
    }

    /// Its base port.
    pub const fn base(&self) -> u16 {
        self.base
    }

    /// Sets 115200 baud, 8N1, interrupts off, DTR/RTS/OUT2, and clears pending status: the
    /// kernel's `serial_init`.
    pub fn init(&self) -> Result<()> {
        while self.read(register::LINE_STATUS)? & (TRANSMIT_EMPTY | TRANSMITTER_IDLE) == 0 {}
        let [low, high] = DIVISOR_115200.to_le_bytes();
        self.write(register::INTERRUPT_ENABLE, 0)?;
        self.write(register::LINE_CONTROL, DIVISOR_LATCH)?;
        self.write(register::DATA, low)?;
        self.write(register::INTERRUPT_ENABLE, high)?;
        self.write(register::LINE_CONTROL, EIGHT_N_ONE)?;
        self.write(register::MODEM_CONTROL, DTR_RTS_OUT2)?;
        self.read(register::DATA)?;
        self.read(register::LINE_STATUS)?;
        self.read(register::MODEM_STATUS)?;
        Ok(())
    }

    /// Writes one byte once the transmitter can take it.
    pub fn put_byte(&self, byte: u8) -> Result<()> {
        while self.read(register::LINE_STATUS)? & TRANSMIT_EMPTY == 0 {}
        self.write(register::DATA, byte)
    }

    /// Writes text, a line feed followed by a carriage return (as the kernel's console does).
    pub fn put_str(&self, text: &str) -> Result<()> {
        self.put_bytes(text.as_bytes())
    }

    /// Writes bytes, a line feed followed by a carriage return (as the kernel's console does).
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<()> {
        for &byte in bytes {
            self.put_byte(byte)?;
            if byte == b'\n' {
                self.put_byte(b'\r')?;
            }
        }
        Ok(())
    }

    fn read(&self, offset: u16) -> Result<u8> {
        self.ports.in8(self.base + offset)
    }

    fn write(&self, offset: u16, value: u8) -> Result<()> {
        self.ports.out8(self.base + offset, value)
    }
}
