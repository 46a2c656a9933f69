//! A detector's binary decisions against labels: true/false positives and negatives, with
//! precision tp / (tp + fp) and recall tp / (tp + fn).

/// Confusion counts of one detector on one labelled set.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Confusion {
    pub tp: u32,
    pub fp: u32,
    pub fn_: u32,
    pub tn: u32,
}

impl Confusion {
    /// Counts one decision: `label` is the truth, `predicted` what the detector said.
    pub fn add(&mut self, label: bool, predicted: bool) {
        match (label, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }

    pub fn merge(&mut self, o: &Confusion) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
    }

    /// `None` when nothing was flagged (undefined).
    pub fn precision(&self) -> Option<f64> {
        let flagged = self.tp + self.fp;
        (flagged > 0).then(|| f64::from(self.tp) / f64::from(flagged))
    }

    /// 0 when there is nothing to find.
    pub fn recall(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1))
    }

    /// Decisions counted.
    pub fn n(&self) -> u32 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    /// Flagged as positive.
    pub fn flagged(&self) -> u32 {
        self.tp + self.fp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_and_merge() {
        let mut a = Confusion::default();
        assert_eq!((a.precision(), a.recall()), (None, 0.0));
        for (label, predicted) in [(true, true), (true, true), (true, false), (false, true)] {
            a.add(label, predicted);
        }
        a.add(false, false);
        assert_eq!((a.n(), a.flagged()), (5, 3));
        assert!((a.precision().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((a.recall() - 2.0 / 3.0).abs() < 1e-12);
        let mut b = Confusion::default();
        b.merge(&a);
        b.merge(&a);
        assert_eq!((b.tp, b.fp, b.fn_, b.tn), (4, 2, 2, 2));
    }
}
