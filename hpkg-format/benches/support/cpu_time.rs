//! A criterion measurement of the benchmark thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) instead of wall time: on a small machine shared
//! with other work, wall time mostly measures the neighbours. System time (the
//! positioned reads' syscalls) is included.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::Throughput;

/// Thread CPU time in nanoseconds.
pub struct CpuTime;

/// The calling thread's CPU time in nanoseconds.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // every Linux supports.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        now_ns()
    }
    fn end(&self, start: u64) -> u64 {
        now_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NanosFormatter
    }
}

/// Formats nanoseconds, and throughputs per CPU second.
struct NanosFormatter;

impl ValueFormatter for NanosFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns")
        } else if typical < 1e6 {
            (1e-3, "µs")
        } else if typical < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(&self, typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let (amount, units): (f64, [(f64, &'static str); 3]) = match *t {
            Throughput::Bytes(b) | Throughput::BytesDecimal(b) => (
                b as f64,
                [
                    (1.0, "B/s"),
                    (1024.0 * 1024.0, "MiB/s"),
                    (1024.0 * 1024.0 * 1024.0, "GiB/s"),
                ],
            ),
            Throughput::Elements(e) | Throughput::ElementsAndBytes { elements: e, .. } => (
                e as f64,
                [(1.0, "elem/s"), (1e6, "Melem/s"), (1e9, "Gelem/s")],
            ),
            Throughput::Bits(b) => (b as f64, [(1.0, "b/s"), (1e6, "Mb/s"), (1e9, "Gb/s")]),
        };
        let per_sec = amount * 1e9 / typical;
        let (div, unit) = if per_sec >= units[2].0 {
            units[2]
        } else if per_sec >= units[1].0 {
            units[1]
        } else {
            units[0]
        };
        values.iter_mut().for_each(|v| *v = amount * 1e9 / *v / div);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
