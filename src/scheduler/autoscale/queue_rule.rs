//! The queue-delay rule as a plain state machine (tested exactly below):
//! grow the base capacity by half while tasks wait longer than the target
//! and cores are idle, two windows in a row; halve it back toward the
//! starting point after calm, never within `CALM` of a grow.

use std::time::{Duration, Instant};

use crate::config::Autoscale;

/// Calm time before a shrink, and the least time between a grow and a
/// shrink (hysteresis).
pub(crate) const CALM: Duration = Duration::from_millis(100);

/// What one window showed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Queued tasks wait longer than the target (Little's law estimate).
    pub(crate) over_target: bool,
    /// Another thread would find an idle core.
    pub(crate) cores_idle: bool,
    /// The base capacity now.
    pub(crate) base: usize,
    /// The starting point, clamped into the bounds.
    pub(crate) start: usize,
}

#[derive(Default)]
pub(crate) struct QueueRule {
    /// The previous window was over the target with idle cores.
    pressed: bool,
    calm_since: Option<Instant>,
    last_grow: Option<Instant>,
}

impl QueueRule {
    /// The new base capacity after a window ending at `now`, if it moves.
    pub(crate) fn step(&mut self, settings: Autoscale, now: Instant, window: Window) -> Option<usize> {
        let Window {
            over_target,
            cores_idle,
            base,
            start,
        } = window;
        if over_target {
            self.calm_since = None;
            // Two windows in a row over the target with idle cores: one slow
            // window (a stalled machine) does not grow it.
            let pressed = over_target && cores_idle;
            let confirmed = std::mem::replace(&mut self.pressed, pressed) && pressed;
            if confirmed && base < settings.max {
                self.last_grow = Some(now);
                return Some((base + (base / 2).max(1)).min(settings.max));
            }
            return None;
        }
        self.pressed = false;
        if base < settings.min {
            return Some(settings.min);
        }
        let calm_since = *self.calm_since.get_or_insert(now);
        let grew_lately = self.last_grow.is_some_and(|at| now.duration_since(at) < CALM);
        if base > start && now.duration_since(calm_since) >= CALM && !grew_lately {
            self.calm_since = Some(now);
            return Some((base / 2).max(start));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn window(over_target: bool, cores_idle: bool, base: usize) -> Window {
        Window {
            over_target,
            cores_idle,
            base,
            start: 2,
        }
    }

    #[test]
    fn grows_by_half_only_after_two_pressed_windows_and_never_past_max() {
        let settings = Autoscale::new(1, 8);
        let mut rule = QueueRule::default();
        let t = Instant::now();
        assert_eq!(rule.step(settings, t, window(true, true, 2)), None);
        assert_eq!(rule.step(settings, t + 20 * MS, window(true, true, 2)), Some(3));
        assert_eq!(rule.step(settings, t + 40 * MS, window(true, true, 3)), Some(4));
        assert_eq!(rule.step(settings, t + 60 * MS, window(true, true, 6)), Some(8));
        assert_eq!(rule.step(settings, t + 80 * MS, window(true, true, 8)), None);
    }

    #[test]
    fn a_busy_machine_never_grows() {
        let settings = Autoscale::new(1, 8);
        let mut rule = QueueRule::default();
        let t = Instant::now();
        for i in 0..100 {
            assert_eq!(rule.step(settings, t + i * 20 * MS, window(true, false, 2)), None);
        }
        // Idle cores in one window only, between busy ones: still no grow.
        assert_eq!(rule.step(settings, t, window(true, true, 2)), None);
        assert_eq!(rule.step(settings, t, window(true, false, 2)), None);
        assert_eq!(rule.step(settings, t, window(true, true, 2)), None);
    }

    #[test]
    fn shrinks_by_halves_to_the_start_after_calm_with_hysteresis() {
        let settings = Autoscale::new(1, 64);
        let mut rule = QueueRule::default();
        let t = Instant::now();
        rule.step(settings, t, window(true, true, 32));
        assert_eq!(rule.step(settings, t + 20 * MS, window(true, true, 32)), Some(48));
        // Calm starts; nothing moves for CALM after the grow or the calm.
        assert_eq!(rule.step(settings, t + 40 * MS, window(false, true, 48)), None);
        assert_eq!(rule.step(settings, t + 120 * MS, window(false, true, 48)), None);
        assert_eq!(rule.step(settings, t + 140 * MS, window(false, true, 48)), Some(24));
        assert_eq!(rule.step(settings, t + 200 * MS, window(false, true, 24)), None);
        assert_eq!(rule.step(settings, t + 240 * MS, window(false, true, 24)), Some(12));
        let mut base = 12;
        let mut at = t + 240 * MS;
        while let Some(next) = rule.step(settings, at + CALM, window(false, true, base)) {
            base = next;
            at += CALM;
        }
        assert_eq!(base, 2, "back at the start");
        // Pressure resets the calm clock.
        assert_eq!(rule.step(settings, at, window(true, false, 4)), None);
        assert_eq!(rule.step(settings, at + CALM, window(false, true, 4)), None);
    }

    #[test]
    fn below_min_rises_to_min() {
        let settings = Autoscale::new(3, 8);
        let mut rule = QueueRule::default();
        assert_eq!(rule.step(settings, Instant::now(), window(false, false, 1)), Some(3));
    }
}
