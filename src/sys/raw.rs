//! System calls that touch neither the heap nor `errno`.
//!
//! For a parent whose child runs in its memory (`process::spawn_vm_alongside`):
//! until that child has exec'd, both run the same C library on one heap and
//! one thread-local `errno` with no lock between them (neither knows the
//! other is there), so the parent may only use these and its stack.

use std::ffi::CStr;
use std::os::fd::RawFd;

use nix::errno::Errno;
use syscalls::{syscall, Sysno};

fn errno(e: syscalls::Errno) -> Errno {
    Errno::from_raw(e.into_raw())
}

/// write(2), retried on EINTR; the bytes written.
pub fn write(fd: RawFd, data: &[u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: a valid buffer of that length.
        match unsafe { syscall!(Sysno::write, fd, data.as_ptr(), data.len()) } {
            Err(syscalls::Errno::EINTR) => continue,
            r => return r.map_err(errno),
        }
    }
}

/// read(2), retried on EINTR; 0 at end of file.
pub fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: a valid buffer of that length.
        match unsafe { syscall!(Sysno::read, fd, buf.as_mut_ptr(), buf.len()) } {
            Err(syscalls::Errno::EINTR) => continue,
            r => return r.map_err(errno),
        }
    }
}

/// close(2) of an fd we own.
pub fn close(fd: std::os::fd::OwnedFd) {
    use std::os::fd::IntoRawFd;
    // SAFETY: the fd is ours (taken from its owner); a pipe's close
    // cannot fail in a way worth reporting.
    let _ = unsafe { syscall!(Sysno::close, fd.into_raw_fd()) };
}

/// Read `fd` to end of file into `buf`: how much it holds. What does not
/// fit is read and dropped, so the writer never blocks on us.
pub fn read_to_end(fd: RawFd, buf: &mut [u8]) -> usize {
    let mut n = 0;
    let mut spill = [0u8; 256];
    loop {
        let full = n == buf.len();
        let r = match full {
            false => read(fd, &mut buf[n..]),
            true => read(fd, &mut spill),
        };
        match r {
            Ok(0) | Err(_) => return n,
            Ok(k) if !full => n += k,
            Ok(_) => {}
        }
    }
}

/// Write all of `data` to the file at `path` (opened write-only), as one
/// write: /proc files take their content in one write(2).
pub fn write_file(path: &CStr, data: &[u8]) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated path; the fd is ours and closed below.
    let fd = unsafe {
        syscall!(
            Sysno::openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC
        )
    }
    .map_err(errno)? as RawFd;
    let r = write(fd, data);
    // SAFETY: closing our own fd.
    let _ = unsafe { syscall!(Sysno::close, fd) };
    match r? {
        n if n == data.len() => Ok(()),
        _ => Err(Errno::EIO),
    }
}

/// `/proc/<pid>/<file>` in `buf`, NUL-terminated.
pub fn proc_path<'b>(buf: &'b mut [u8; 64], pid: i32, file: &str) -> &'b CStr {
    let mut digits = [0u8; 12];
    let mut i = digits.len();
    let mut p = pid.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (p % 10) as u8;
        p /= 10;
        if p == 0 {
            break;
        }
    }
    let parts: [&[u8]; 4] = [b"/proc/", &digits[i..], b"/", file.as_bytes()];
    let mut n = 0;
    for part in parts {
        // Truncated rather than overrun; the longest file named here is short.
        let k = part.len().min(buf.len() - 1 - n);
        buf[n..n + k].copy_from_slice(&part[..k]);
        n += k;
    }
    buf[n] = 0;
    CStr::from_bytes_until_nul(&buf[..=n]).expect("NUL-terminated above")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths() {
        let mut b = [0u8; 64];
        assert_eq!(
            proc_path(&mut b, 0, "uid_map").to_bytes(),
            b"/proc/0/uid_map"
        );
        assert_eq!(
            proc_path(&mut b, i32::MAX, "setgroups").to_bytes(),
            b"/proc/2147483647/setgroups"
        );
    }

    #[test]
    fn read_to_end_keeps_what_fits_and_drains_the_rest() {
        let (r, w) = nix::unistd::pipe().unwrap();
        use std::os::fd::AsRawFd;
        write(w.as_raw_fd(), &[7u8; 1000]).unwrap();
        drop(w);
        let mut buf = [0u8; 100];
        assert_eq!(read_to_end(r.as_raw_fd(), &mut buf), 100);
        assert_eq!(buf, [7u8; 100]);
    }
}
