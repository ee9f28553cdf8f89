//! Pacing the backfill by the foreground's own latency.
//!
//! The engine serves every foreground read and write, so it times them ([`Latencies`]: each
//! call's duration — lock waits, statements, commit — over a sliding window). Before a move's
//! backfill starts, the worker takes the foreground p99 as its *baseline*; while it copies, a
//! [`Controller`] keeps the foreground p99 within a *budget* (default 1.5× the baseline).
//!
//! The promise is about the p99 over the move, so the controller reads two windows every
//! quarter second (every twentieth of a second during slow start): the p99 of the last second and the p99 of the move so far (at most the
//! last [`LONG_WINDOW`]; in its first seconds, the last five, before the move included). Over
//! a second the p99 rests on a few slow calls and swings with anything else the machine does;
//! the longer window comes closer to what the promise counts. (Both reach back only as far as
//! the samples kept: [`Latencies`] keeps the last 8192 calls, so at high call rates the longer
//! window shrinks towards the last second. For a signal with too few calls in the last second
//! for a p99, its longer window stands in for it; then a move so far over the mark holds.)
//!
//! > Until its first cut, the rate doubles each time, deciding every twentieth of a second
//! > (slow start, from the minimum); then it grows by a fixed step. It is cut (to [`CUT`] of itself) when the last second's p99 is
//! > over the budget while the move's so far is over its *mark* (the baseline plus [`MARK`] of
//! > the headroom the budget allows: 1.275× for a budget of 1.5×), or when the last second's
//! > is far over the budget ([`SURGE`] × it). It is held where it is when the last second is
//! > over the budget alone, or over the mark while the move so far is too. Never below the
//! > minimum rate that keeps every move finishing, nor above `max_rate`, nor much beyond twice
//! > what the backfill achieved since the last decision. After a cut its next decisions
//! > change nothing for a second, so that one spike still in the last second's window is not
//! > cut for twice.
//! > (Additive increase, multiplicative decrease, as TCP's congestion control.)
//!
//! The application may add its own signal (its API p99, a load figure) through [`Signal`]; the
//! controller acts on whichever of the two is further over its baseline. The batch size follows
//! the rate (about 50 ms of copying per batch), so a slow backfill also holds the write locks
//! for shorter moments.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How many foreground durations the window keeps at most.
const KEPT: usize = 8192;
/// Below this many samples in its window a p99 is not trusted.
pub const MIN_SAMPLES: usize = 20;
/// A baseline p99 is never taken below this (ms): below it users notice nothing, and the
/// noise of a sub-millisecond p99 (a lock wait behind one batch) must not make the budget
/// unreachable. With 2 ms, the engine's own p99 (about 1 ms before a move) held Notely's
/// backfill near 6k notes/s while the API p99 stayed at 1.0× its baseline.
pub const BASELINE_FLOOR_MS: f64 = 5.0;
/// How often the controller decides.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// How often it decides until its first cut (slow start, see [`Controller::interval`]).
pub const START_INTERVAL: Duration = Duration::from_millis(50);
/// The short window the controller's p99 is measured over.
pub const WINDOW: Duration = Duration::from_secs(1);
/// The long window: the move's p99 so far, over at most this long.
pub const LONG_WINDOW: Duration = Duration::from_secs(10);
/// A last second this many times over the budget is cut for at its next decision, whatever
/// the move's p99 so far (unless within a second of the last cut). At least 1.
pub const SURGE: f64 = 1.5;
/// The mark, as a share of the headroom the budget allows over the baseline: with both the
/// last second and the move so far over it the rate stops climbing, and with the last second
/// over the budget too it is cut — so that the p99 of the whole move, which the seconds still
/// to come move too, lands within the budget. Between 0 and 1.
pub const MARK: f64 = 0.55;
/// Until its first cut, the rate grows by this factor at each decision that climbs.
pub const SLOW_START: f64 = 2.0;
/// A cut multiplies the rate by this (TCP CUBIC's factor). Halving, one noisy second sent a
/// move at its ceiling halfway down, for seconds of climbing back by steps: in 8 interleaved
/// pairs of Notely's demo, halving moved 9.5–16.2k notes/s (median 14.2k) at 0.86–1.31× the
/// users' p99 before, and 0.7 moved 13.4–15.5k (median 15.0k) at 0.92–1.22×.
pub const CUT: f64 = 0.7;
const _: () = assert!(SURGE >= 1.0 && MARK >= 0.0 && MARK <= 1.0 && CUT > 0.0 && CUT < 1.0);

/// The durations of the engine's foreground calls, newest last (a bounded sliding window).
#[derive(Debug, Default)]
pub struct Latencies {
    samples: Mutex<VecDeque<(Instant, u32)>>,
}

impl Latencies {
    /// Records one foreground call's duration.
    pub fn record(&self, took: Duration) {
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        let mut s = self
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.len() == KEPT {
            s.pop_front();
        }
        s.push_back((Instant::now(), us));
    }

    /// The p99 (ms) of the calls in the last `window`, with their number; `None` with fewer
    /// than [`MIN_SAMPLES`].
    pub fn p99(&self, window: Duration) -> Option<(f64, usize)> {
        let since = Instant::now().checked_sub(window)?;
        let mut recent: Vec<u32> = {
            let s = self
                .samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.iter()
                .rev()
                .take_while(|(at, _)| *at >= since)
                .map(|(_, us)| *us)
                .collect()
        };
        if recent.len() < MIN_SAMPLES {
            return None;
        }
        let i = (((recent.len() as f64) * 0.99).ceil() as usize - 1).min(recent.len() - 1);
        let (_, p99, _) = recent.select_nth_unstable(i);
        Some((f64::from(*p99) / 1e3, recent.len()))
    }
}

/// The application's own latency over a window (ms, e.g. its API p99 over the last second;
/// over the last five for the baseline, and over five to ten for the move so far), or `None`
/// when it has no figure; combined with the engine's measurement by the [`Controller`].
#[derive(Clone)]
pub struct Signal(pub Arc<dyn Fn(Duration) -> Option<f64> + Send + Sync>);

impl Signal {
    /// A signal from a function of the window.
    pub fn new(f: impl Fn(Duration) -> Option<f64> + Send + Sync + 'static) -> Signal {
        Signal(Arc::new(f))
    }
    /// The figure over the last `window`.
    pub fn read(&self, window: Duration) -> Option<f64> {
        (self.0)(window)
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signal(..)")
    }
}

/// What the controller is doing, as move status, the TUI and the operator page show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaceState {
    /// The backfill rate it allows now (records/s).
    pub rate: f64,
    /// The budget: foreground p99 at most this many times its baseline.
    pub budget: f64,
    /// The engine's foreground p99 before the backfill (ms), `None` without traffic then.
    pub baseline_ms: Option<f64>,
    /// The engine's foreground p99 over the last second (ms).
    pub measured_ms: Option<f64>,
    /// The engine's foreground p99 over the move so far (ms; see the module docs).
    #[serde(default)]
    pub so_far_ms: Option<f64>,
    /// The application's signal before the backfill, and now (ms).
    pub app_baseline_ms: Option<f64>,
    /// See `app_baseline_ms`.
    pub app_measured_ms: Option<f64>,
    /// The application's signal over the move so far (ms).
    #[serde(default)]
    pub app_so_far_ms: Option<f64>,
    /// Share of the time so far the foreground was over the budget in its last second, or over
    /// the mark in both its last second and the move so far, so that the rate was cut or held
    /// (0–1; the second after a cut included).
    pub throttled: f64,
    /// Records per batch now.
    pub batch: usize,
    /// Whether the rate sits at its minimum while the foreground is over the budget in its
    /// last second, or over the mark in both its last second and the move so far (the ETA
    /// then says so).
    pub at_minimum: bool,
}

impl PaceState {
    /// One line: `pace 2400/s within 1.50× (p99 3.1 ms, 2.6 over the move, 2.0 before; app
    /// 5.2 ms, 5.0 over the move, 4.8 before), throttled 12%`, and `held at the minimum rate by
    /// the budget` when it is.
    pub fn describe(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        // "3.1 ms, 2.6 over the move, 2.0 before" (the middle one when known).
        let three = |now: Option<f64>, so_far: Option<f64>, before: Option<f64>| {
            let so_far = so_far.map_or_else(String::new, |v| format!(", {v:.1} over the move"));
            format!("{} ms{so_far}, {} before", ms(now), ms(before))
        };
        let mut s = format!(
            "pace {:.0}/s within {:.2}× (p99 {}",
            self.rate,
            self.budget,
            three(self.measured_ms, self.so_far_ms, self.baseline_ms)
        );
        if self.app_measured_ms.is_some() || self.app_baseline_ms.is_some() {
            s.push_str(&format!(
                "; app {}",
                three(
                    self.app_measured_ms,
                    self.app_so_far_ms,
                    self.app_baseline_ms
                )
            ));
        }
        s.push_str(&format!("), throttled {:.0}%", self.throttled * 100.0));
        if self.at_minimum {
            s.push_str(", held at the minimum rate by the budget");
        }
        s
    }
}

/// The foreground p99 over one window (ms): the engine's, and the application's [`Signal`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// The engine's foreground p99, `None` with too few calls.
    pub engine_ms: Option<f64>,
    /// The application's signal, `None` without one.
    pub app_ms: Option<f64>,
}

impl Reading {
    /// Both figures over the last `window`.
    pub fn take(latencies: &Latencies, signal: Option<&Signal>, window: Duration) -> Reading {
        Reading {
            engine_ms: latencies.p99(window).map(|(p, _)| p),
            app_ms: signal.and_then(|s| s.read(window)),
        }
    }
}

/// The AIMD controller (see the module docs). Pure: the worker feeds it measurements.
#[derive(Debug, Clone)]
pub struct Controller {
    budget: f64,
    min_rate: f64,
    max_rate: Option<f64>,
    step: f64,
    rate: f64,
    baseline: Option<f64>,
    app_baseline: Option<f64>,
    over: Duration,
    total: Duration,
    /// After a cut, how long until the last second's window holds only samples taken since:
    /// no second cut for the same spike meanwhile.
    cooldown: Duration,
    /// Never cut yet: the rate grows by [`SLOW_START`] rather than by `step`.
    starting: bool,
    last: PaceState,
}

impl Controller {
    /// A controller keeping the foreground p99 within `budget` × baseline, the rate between
    /// `min_rate` and `max_rate` (records/s). It starts at the minimum and climbs.
    pub fn new(budget: f64, min_rate: f64, max_rate: Option<f64>) -> Controller {
        let min_rate = min_rate.max(1.0);
        let max_rate = max_rate.filter(|m| *m > 0.0).map(|m| m.max(min_rate));
        // Twenty steps from the minimum to the maximum (or to 20k/s without one).
        let step = ((max_rate.unwrap_or(20_000.0) - min_rate) / 20.0).max(min_rate / 2.0);
        Controller {
            budget: budget.max(1.0),
            min_rate,
            max_rate,
            step,
            rate: min_rate,
            baseline: None,
            app_baseline: None,
            over: Duration::ZERO,
            total: Duration::ZERO,
            cooldown: Duration::ZERO,
            starting: true,
            last: PaceState::default(),
        }
    }

    /// Records the baselines measured before the backfill (engine's and application's p99, ms).
    pub fn set_baseline(&mut self, engine_ms: Option<f64>, app_ms: Option<f64>) {
        self.baseline = engine_ms.map(|b| b.max(BASELINE_FLOOR_MS));
        self.app_baseline = app_ms.map(|b| b.max(BASELINE_FLOOR_MS));
    }

    /// How far over its baseline the foreground is: the larger of the two ratios (`None`
    /// without any measurement to compare). A side without a baseline is judged against the
    /// floor.
    fn ratio(&self, reading: Reading) -> Option<f64> {
        let of = |now: Option<f64>, base: Option<f64>| {
            now.map(|n| n / base.unwrap_or(BASELINE_FLOOR_MS).max(BASELINE_FLOOR_MS))
        };
        match (
            of(reading.engine_ms, self.baseline),
            of(reading.app_ms, self.app_baseline),
        ) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The move's mark, as a ratio to the baseline (see [`MARK`]).
    fn mark(&self) -> f64 {
        1.0 + MARK * (self.budget - 1.0)
    }

    /// One decision, `dt` after the previous one, given the foreground p99 of the last second
    /// (`last`) and of the move so far (`so_far`), and the rate the backfill achieved
    /// meanwhile. Returns the rate allowed from now on.
    pub fn update(&mut self, dt: Duration, last: Reading, so_far: Reading, achieved: f64) -> f64 {
        self.total += dt;
        let overall = self.ratio(so_far);
        // A signal with too few calls in the last second for a p99 (light traffic): its
        // longer window stands in for it.
        let now = self.ratio(Reading {
            engine_ms: last.engine_ms.or(so_far.engine_ms),
            app_ms: last.app_ms.or(so_far.app_ms),
        });
        let above = |r: Option<f64>, limit: f64| r.is_some_and(|r| r > limit);
        let (budget, mark) = (self.budget, self.mark());
        // The move so far over its mark is cut for only while the last second adds to it:
        // within the budget now, the move's p99 comes down by itself.
        let cut = (above(now, budget) && above(overall, mark)) || above(now, budget * SURGE);
        // Held: the last second over the budget, or the move so far over its mark while the
        // last second adds to it. (A cut is held too: SURGE is at least 1.) The last second
        // under the mark climbs whatever the move so far: that is how the move's p99 comes
        // back down, and a move held at a low rate by an old slow spell would never end.
        let held = above(now, budget) || (above(overall, mark) && above(now, mark));
        if held {
            self.over += dt;
        }
        if !self.cooldown.is_zero() {
            // The last second's window still holds samples from before the last cut: wait for
            // fresh ones.
            self.cooldown = self.cooldown.saturating_sub(dt);
        } else if cut {
            self.rate = (self.rate * CUT).max(self.min_rate);
            self.cooldown = WINDOW;
            self.starting = false;
        } else if !held {
            // No foreground to protect, or within budget: climb, but not far beyond what the
            // backfill manages (so that a cut takes effect at once). After a slow interval
            // (a verification or phase step instead of copies) that can lower the rate.
            let ceiling = self.max_rate.unwrap_or(f64::INFINITY);
            let reach = (achieved * 2.0).max(self.min_rate + self.step);
            let next = if self.starting {
                self.rate * SLOW_START
            } else {
                self.rate + self.step
            };
            self.rate = next.min(ceiling).min(reach);
        }
        self.last = PaceState {
            rate: self.rate,
            budget: self.budget,
            baseline_ms: self.baseline,
            measured_ms: last.engine_ms,
            so_far_ms: so_far.engine_ms,
            app_baseline_ms: self.app_baseline,
            app_measured_ms: last.app_ms,
            app_so_far_ms: so_far.app_ms,
            throttled: if self.total.is_zero() {
                0.0
            } else {
                self.over.as_secs_f64() / self.total.as_secs_f64()
            },
            batch: 0,
            at_minimum: held && self.rate <= self.min_rate,
        };
        self.rate
    }

    /// How long until the next decision: [`START_INTERVAL`] during slow start, then
    /// [`INTERVAL`]. Doubling from the minimum every quarter second, a backfill spent its first
    /// second and a half below its ceiling, a fifth of a 7-second move in Notely's demo; every
    /// twentieth of a second it gets there in about a third of a second. The climb is no steeper
    /// for the foreground than a cut can answer: the last second's p99 lags either way, and
    /// the rate never goes far beyond twice what the backfill achieved.
    pub fn interval(&self) -> Duration {
        if self.starting {
            START_INTERVAL
        } else {
            INTERVAL
        }
    }

    /// The rate allowed now (records/s).
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Records per batch at the current rate: about 50 ms of copying, between 10 and `max`.
    pub fn batch(&self, max: usize) -> usize {
        ((self.rate * 0.05) as usize).clamp(10.min(max), max.max(1))
    }

    /// What the controller last decided, and why.
    pub fn state(&self, batch: usize) -> PaceState {
        PaceState {
            batch,
            rate: self.rate,
            budget: self.budget,
            baseline_ms: self.baseline,
            app_baseline_ms: self.app_baseline,
            ..self.last.clone()
        }
    }
}

/// How far the paced backfill may fall behind its schedule and still make the time up (see
/// [`Pacer::due`]): a step that copies nothing (an owner's verification) or a rest that
/// overslept is made up by shorter rests after it, up to this much; longer, and the schedule
/// starts over from now rather than catch up in a burst.
pub(crate) const SLACK: Duration = Duration::from_millis(50);

/// When the batch after one of `taken` records is due, at `rate` records/s, the last one
/// having been due at `due` (see [`Pacer::due`]): `taken / rate` later, counted from `now` less
/// [`SLACK`] if the worker is further behind than that.
pub(crate) fn next_due(due: Instant, now: Instant, taken: usize, rate: f64) -> Instant {
    let behind = now.checked_sub(SLACK).unwrap_or(now);
    due.max(behind) + Duration::from_secs_f64(taken as f64 / rate.max(1.0))
}

/// How long the paced worker rests after a batch: until the batch is due (`until_due`), but at
/// least `pause` once `since_rest` (the time since its last rest of at least `pause`) reaches
/// [`WORK_PER_PAUSE`] pauses. Writers of other processes wait in SQLite's busy handler, unseen
/// by the batch's yield and by the latency the controller reads: at the worker's full speed,
/// they get a chance at the locks now and then.
pub(crate) fn paced_rest(until_due: Duration, pause: Duration, since_rest: Duration) -> Duration {
    if until_due < pause && since_rest >= pause * WORK_PER_PAUSE {
        pause
    } else {
        until_due
    }
}

/// The latency pace of one worker's move.
pub(crate) struct Pacer {
    pub(crate) controller: Controller,
    /// When the controller last decided, and the records copied since.
    pub(crate) decided: Instant,
    pub(crate) since: u64,
    /// When the next batch is due: each batch moves it on by its records at the rate. Resting
    /// until it, rather than for each batch's own share, keeps the achieved rate at the
    /// allowed one: a low-priority thread on a busy machine wakes late from short sleeps, and
    /// per batch those losses held a backfill allowed 25k records/s to about 22k.
    pub(crate) due: Instant,
    /// When the last rest of at least the pause ended (see [`crate::Pace::pause`]).
    pub(crate) rested: Instant,
}

/// Under a latency budget, the worker rests at least [`crate::Pace::pause`] once this many pauses have
/// passed without such a rest (see [`paced_rest`]).
pub(crate) const WORK_PER_PAUSE: u32 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(engine_ms: Option<f64>, app_ms: Option<f64>) -> Reading {
        Reading { engine_ms, app_ms }
    }

    /// One decision where the last second and the move so far read alike; the backfill
    /// achieved `achieved`, or kept up with the rate.
    fn same(
        c: &mut Controller,
        engine_ms: Option<f64>,
        app_ms: Option<f64>,
        achieved: Option<f64>,
    ) -> f64 {
        let r = reading(engine_ms, app_ms);
        let achieved = achieved.unwrap_or(c.rate());
        c.update(INTERVAL, r, r, achieved)
    }

    /// A machine where the foreground p99 grows with the backfill rate: `base` ms idle, plus
    /// `per_k` ms per 1000 records/s, plus up to `noise` ms either way (a fixed pseudo-random
    /// sequence); the backfill can reach `capacity` records/s. The move so far reads as the
    /// mean of the last twenty quarter seconds (five seconds): it lags the last second.
    struct Machine {
        base: f64,
        per_k: f64,
        noise: f64,
        capacity: f64,
        seed: u64,
        recent: VecDeque<f64>,
    }

    impl Machine {
        fn step(&mut self, c: &mut Controller) -> (f64, f64) {
            self.seed = (self.seed * 1_103_515_245 + 12_345) % (1 << 31);
            let noise = (self.seed as f64 / (1u64 << 31) as f64 * 2.0 - 1.0) * self.noise;
            let achieved = c.rate().min(self.capacity);
            let p99 = self.base + self.per_k * achieved / 1000.0 + noise;
            if self.recent.len() == 20 {
                self.recent.pop_front();
            }
            self.recent.push_back(p99);
            let so_far = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
            let rate = c.update(
                INTERVAL,
                reading(Some(p99), None),
                reading(Some(so_far), None),
                achieved,
            );
            (rate, p99)
        }
    }

    #[test]
    fn it_converges_below_the_budget_and_oscillates_within_a_factor_of_two() {
        let mut m = Machine {
            base: 10.0,
            per_k: 1.0,
            noise: 2.0,
            capacity: 30_000.0,
            seed: 1,
            recent: VecDeque::new(),
        };
        let mut c = Controller::new(1.5, 500.0, None);
        c.set_baseline(Some(m.base), None);
        // The budget (15 ms) holds up to 5000 records/s, the mark (1.275 × 10 ms) up to
        // 2750/s, give or take the noise.
        let (mut rates, mut over, mut cuts) = (Vec::new(), 0, 0);
        for i in 0..400 {
            let before = c.rate();
            let (rate, p99) = m.step(&mut c);
            if i >= 100 {
                rates.push(rate);
                over += usize::from(p99 > 15.0);
                cuts += usize::from(rate < before);
            }
        }
        let (lo, hi) = rates
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), r| (l.min(*r), h.max(*r)));
        assert!(hi <= 2.0 * 5000.0 + c.step, "peak {hi}");
        assert!(lo >= 2750.0 * CUT - c.step, "trough {lo}");
        // It keeps correcting (cuts, not only holds), and is over budget at most one interval
        // in four once converged.
        assert!(cuts >= 5, "{cuts} cuts");
        assert!(
            over * 4 <= rates.len(),
            "over budget {over} of {}",
            rates.len()
        );
        let s = c.state(c.batch(100));
        assert!(s.throttled > 0.0 && s.throttled <= 1.0, "{s:?}");
    }

    #[test]
    fn without_noise_it_settles_between_the_mark_and_the_budget_and_stays() {
        let mut m = Machine {
            base: 10.0,
            per_k: 1.0,
            noise: 0.0,
            capacity: 30_000.0,
            seed: 1,
            recent: VecDeque::new(),
        };
        let mut c = Controller::new(1.5, 500.0, None);
        c.set_baseline(Some(m.base), None);
        let mut last = Vec::new();
        for i in 0..200 {
            let (rate, p99) = m.step(&mut c);
            if i >= 100 {
                last.push((rate, p99));
            }
        }
        // Held at one rate whose p99 is within the budget: no oscillation without a cause.
        let first = last[0].0;
        assert!(
            last.iter().all(|(r, p)| *r == first && *p <= 15.0),
            "{last:?}"
        );
        assert!(first >= 2750.0, "{first}");
        assert!(c.state(10).throttled > 0.5);
    }

    #[test]
    fn it_recovers_when_the_foreground_calms_down_and_respects_the_bounds() {
        let mut c = Controller::new(1.5, 500.0, Some(8000.0));
        c.set_baseline(Some(4.0), None);
        // A storm: every interval far over budget, the rate falls to the minimum and stays.
        for _ in 0..20 {
            same(&mut c, Some(50.0), None, None);
        }
        assert_eq!(c.rate(), 500.0);
        assert!(c.state(10).at_minimum);
        // Calm again: back to the maximum within 20 steps (5 s), never above it.
        let mut steps = 0;
        while c.rate() < 8000.0 {
            same(&mut c, Some(4.0), None, None);
            steps += 1;
            assert!(steps <= 20, "still at {} after {steps} steps", c.rate());
        }
        for _ in 0..10 {
            same(&mut c, Some(4.0), None, None);
        }
        assert_eq!(c.rate(), 8000.0);
    }

    #[test]
    fn it_starts_fast_and_climbs_by_steps_after_its_first_cut() {
        let mut c = Controller::new(1.5, 500.0, Some(25_000.0));
        c.set_baseline(Some(4.0), None);
        assert_eq!(c.interval(), START_INTERVAL);
        // Doubling at each decision: 500 -> 25k in six (0.3 s at slow start's interval),
        // where steps of (25k - 500) / 20 would take twenty.
        let mut steps = 0;
        while c.rate() < 25_000.0 {
            same(&mut c, Some(4.0), None, None);
            steps += 1;
            assert!(steps <= 6, "still at {} after {steps} steps", c.rate());
        }
        // The backfill manages only 3000/s: the rate does not run away beyond twice that.
        let mut c = Controller::new(1.5, 500.0, Some(25_000.0));
        for _ in 0..20 {
            same(&mut c, Some(4.0), None, Some(3000.0));
        }
        assert_eq!(c.rate(), 6000.0);
        // The first cut ends the slow start.
        same(&mut c, Some(40.0), None, None);
        let cut = 6000.0 * CUT;
        assert_eq!(c.rate(), cut);
        assert_eq!(
            c.interval(),
            INTERVAL,
            "decisions every quarter second after the start"
        );
        for _ in 0..4 {
            same(&mut c, Some(4.0), None, None);
        }
        assert_eq!(c.rate(), cut, "held for a window after the cut");
        same(&mut c, Some(4.0), None, None);
        assert_eq!(c.rate(), cut + c.step);
    }

    #[test]
    fn a_bad_second_or_a_second_and_a_move_over_the_mark_hold_the_rate_and_both_over_or_a_surge_cut_it()
     {
        // The ceiling far above the rates seen, so that a climb would show.
        let mut c = Controller::new(1.5, 500.0, Some(100_000.0));
        c.set_baseline(Some(10.0), None);
        let (fine, bad, surge) = (
            reading(Some(10.0), None),
            reading(Some(16.0), None),
            reading(Some(23.0), None),
        );
        // The mark: 10 ms × (1 + 0.55 × 0.5) = 12.75 ms.
        let (within, close) = (reading(Some(12.5), None), reading(Some(13.0), None));
        for _ in 0..5 {
            c.update(INTERVAL, fine, fine, c.rate());
        }
        let calm = c.rate();
        assert_eq!(calm, 16_000.0, "doubled five times from 500");
        // The last second over the budget (16 ms > 15), the move so far within: held.
        for _ in 0..8 {
            c.update(INTERVAL, bad, within, calm);
        }
        assert_eq!(c.rate(), calm);
        assert!(c.state(10).throttled > 0.0);
        // The move so far over its mark, the last second too but within the budget: held.
        for _ in 0..8 {
            c.update(INTERVAL, close, close, calm);
        }
        assert_eq!(c.rate(), calm);
        // The last second under the mark: it climbs (still doubling: no cut yet), however the
        // move went so far.
        c.update(INTERVAL, fine, close, calm);
        assert_eq!(c.rate(), 2.0 * calm);
        let high = c.rate();
        // Both over: cut.
        c.update(INTERVAL, bad, close, high);
        assert_eq!(c.rate(), high * CUT);
        // A last second far over the budget (23 ms > 1.5 × 15): cut, however well the move
        // went so far, once the second after the last cut has passed.
        for _ in 0..4 {
            c.update(INTERVAL, fine, fine, c.rate());
        }
        let before = c.rate();
        assert_eq!(before, high * CUT, "no decision in the second after a cut");
        c.update(INTERVAL, surge, fine, before);
        assert_eq!(c.rate(), before * CUT);
    }

    #[test]
    fn with_too_few_calls_for_the_last_second_the_move_so_far_decides() {
        let mut c = Controller::new(1.5, 500.0, Some(100_000.0));
        c.set_baseline(Some(10.0), None);
        let none = reading(None, None);
        for _ in 0..5 {
            c.update(INTERVAL, none, reading(Some(10.0), None), c.rate());
        }
        let calm = c.rate();
        assert_eq!(calm, 16_000.0);
        // Over the mark, within the budget: held (the longer window stands for the last
        // second too); over the budget: cut.
        c.update(INTERVAL, none, reading(Some(13.0), None), calm);
        assert_eq!(c.rate(), calm);
        c.update(INTERVAL, none, reading(Some(16.0), None), calm);
        assert_eq!(c.rate(), calm * CUT);
    }

    #[test]
    fn a_signal_without_a_last_second_is_judged_by_its_longer_window() {
        let mut c = Controller::new(1.5, 500.0, Some(100_000.0));
        c.set_baseline(Some(10.0), Some(10.0));
        for _ in 0..5 {
            let r = reading(Some(10.0), Some(10.0));
            c.update(INTERVAL, r, r, c.rate());
        }
        let calm = c.rate();
        // The engine's last second is fine; the application has too few calls in it, and its
        // longer window is at 4× its baseline: cut.
        c.update(
            INTERVAL,
            reading(Some(10.0), None),
            reading(Some(10.0), Some(40.0)),
            calm,
        );
        assert_eq!(c.rate(), calm * CUT);
    }

    #[test]
    fn a_tight_budget_still_lets_a_foreground_at_its_baseline_climb() {
        // Budget 1.1×: the mark is 1.055× the baseline, above it.
        let mut c = Controller::new(1.1, 500.0, Some(100_000.0));
        c.set_baseline(Some(10.0), None);
        for _ in 0..3 {
            same(&mut c, Some(10.0), None, None);
        }
        assert_eq!(c.rate(), 4000.0);
        assert!(!c.state(10).at_minimum);
    }

    #[test]
    fn the_application_signal_counts_when_it_is_further_over_its_baseline() {
        let mut c = Controller::new(1.5, 100.0, Some(10_000.0));
        c.set_baseline(Some(3.0), Some(20.0));
        for _ in 0..40 {
            same(&mut c, Some(3.0), Some(20.0), None);
        }
        let calm = c.rate();
        assert_eq!(calm, 10_000.0);
        // The engine sees nothing wrong; the application's p99 doubled: cut.
        same(&mut c, Some(3.0), Some(40.0), Some(calm));
        assert_eq!(c.rate(), calm * CUT);
    }

    #[test]
    fn without_traffic_it_climbs_and_small_baselines_are_floored() {
        let mut c = Controller::new(1.5, 500.0, None);
        c.set_baseline(None, None);
        for _ in 0..10 {
            same(&mut c, None, None, None);
        }
        assert!(c.rate() > 500.0);
        // A 0.2 ms baseline is judged as 5 ms: 2.5 ms is within budget.
        let mut c = Controller::new(1.5, 500.0, None);
        c.set_baseline(Some(0.2), None);
        let before = c.rate();
        same(&mut c, Some(2.5), None, None);
        assert!(c.rate() > before);
    }

    #[test]
    fn latencies_give_the_p99_of_the_window() {
        let l = Latencies::default();
        assert!(l.p99(WINDOW).is_none());
        for i in 1..=100u64 {
            l.record(Duration::from_micros(i * 100));
        }
        let (p99, n) = l.p99(WINDOW).unwrap();
        assert_eq!(n, 100);
        assert!((p99 - 9.9).abs() < 1e-9, "{p99}");
    }

    const MS: Duration = Duration::from_millis(1);

    /// Batches at the rate are due one after another, whenever their rests end: a rest that
    /// overslept is made up by the next, shorter one; a worker further behind than `SLACK`
    /// starts over from `SLACK` ago rather than catch up on the whole delay at once.
    #[test]
    fn batches_keep_to_a_schedule_and_make_up_a_late_wake_within_the_slack() {
        let t0 = Instant::now();
        // 100 records at 25k/s: 4 ms each.
        let due = next_due(t0, t0, 100, 25_000.0);
        assert_eq!(due - t0, 4 * MS);
        // Woken 1 ms late, and the next batch took 1 ms: due 4 ms after the last due time,
        // so 2 ms of rest instead of 4.
        let now = t0 + 6 * MS;
        let due = next_due(due, now, 100, 25_000.0);
        assert_eq!(due - t0, 8 * MS);
        assert_eq!(due.saturating_duration_since(now), 2 * MS);
        // Running ahead (a short batch) leaves the schedule as it is.
        let due = next_due(due, t0 + 7 * MS, 50, 25_000.0);
        assert_eq!(due - t0, 10 * MS);
        // A second behind (an owner's verification): counted from `SLACK` ago, no rest now,
        // and the records of one `SLACK` made up at most.
        let now = t0 + 1010 * MS;
        let due = next_due(due, now, 100, 25_000.0);
        assert_eq!(due, now - SLACK + 4 * MS);
        assert_eq!(due.saturating_duration_since(now), Duration::ZERO);
        // A cut takes effect at once: 100 records at 5k/s are 20 ms.
        let due2 = next_due(due, due, 100, 5_000.0);
        assert_eq!(due2 - due, 20 * MS);
    }

    /// Paced at full speed (nothing left until due), the worker rests a pause once ten pauses
    /// have passed without one; a rest the schedule asks for stands, however short; with no
    /// pause configured it never adds one.
    #[test]
    fn a_paced_worker_at_full_speed_pauses_now_and_then() {
        let pause = MS;
        assert_eq!(paced_rest(Duration::ZERO, pause, 3 * MS), Duration::ZERO);
        assert_eq!(paced_rest(Duration::ZERO, pause, 9 * MS), Duration::ZERO);
        assert_eq!(paced_rest(Duration::ZERO, pause, 10 * MS), pause);
        assert_eq!(paced_rest(MS / 4, pause, 10 * MS), pause);
        assert_eq!(paced_rest(MS / 4, pause, 2 * MS), MS / 4);
        assert_eq!(paced_rest(5 * MS, pause, 50 * MS), 5 * MS);
        assert_eq!(
            paced_rest(Duration::ZERO, Duration::ZERO, 50 * MS),
            Duration::ZERO
        );
    }
}
