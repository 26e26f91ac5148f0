//! One log line per period for a failure that repeats with every decision (a full disk, a
//! spool that cannot be written): the count of what happened meanwhile goes into the next
//! line, and the exact numbers are the metrics'.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Throttle {
    period: Duration,
    /// When the last line was written, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub const fn new(period: Duration) -> Throttle {
        Throttle {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(held back)` when a line may be written now, `None` when this one is held back.
    pub fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (last, held) = &mut *state;
        match last {
            Some(at) if at.elapsed() < self.period => {
                *held += 1;
                None
            }
            _ => {
                *last = Some(Instant::now());
                Some(std::mem::take(held))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_and_the_count_of_the_rest() {
        let throttle = Throttle::new(Duration::from_secs(3600));
        assert_eq!(throttle.admit(), Some(0));
        assert_eq!(throttle.admit(), None);
        assert_eq!(throttle.admit(), None);
        let open = Throttle::new(Duration::ZERO);
        assert_eq!(open.admit(), Some(0));
        assert_eq!(open.admit(), Some(0));
    }
}
