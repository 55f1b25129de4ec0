//! A program the test started, ended with the test: no process outlives
//! it, pass or fail. (The benchmarks use it too.)

/// A child process killed (and reaped) when the test ends, pass or fail.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
