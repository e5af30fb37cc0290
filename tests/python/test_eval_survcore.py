"""The one Kaplan-Meier and the one Cox (evaluation/_survcore.py), each against R survival on real data."""
import numpy as np
import pytest

from prime_stats.evaluation import _survcore as sc
from prime_stats.evaluation import survival as sv


def _vec(v):
    return "c(%s)" % ",".join(repr(float(a)) for a in v)


@pytest.fixture(scope="module")
def gbsg(r_engine):
    d = r_engine.run_r("survival::gbsg[, c('rfstime', 'status', 'age', 'nodes', 'pgr', 'hormon')]")
    return d.astype(float)


def test_kaplan_meier_and_greenwood_match_survfit_lung(r_engine):
    ref = r_engine.run_r("""local({f <- survival::survfit(survival::Surv(time, status - 1) ~ 1,
        data = survival::lung); data.frame(time = f$time, n_risk = f$n.risk, n_event = f$n.event,
        n_censor = f$n.censor, surv = f$surv, std_err = f$std.err)})""")
    lung = r_engine.run_r("survival::lung[, c('time', 'status')]")
    km = sc.kaplan_meier_curve(lung.time.to_numpy(float), lung.status.to_numpy(float) - 1)
    for col in ("time", "n_risk", "n_event", "n_censor"):
        np.testing.assert_array_equal(getattr(km, col), ref[col].to_numpy(float))
    np.testing.assert_allclose(km.surv, ref.surv, rtol=1e-13)
    ok = np.isfinite(ref.std_err.to_numpy(float))
    np.testing.assert_allclose(np.sqrt(km.var_log)[ok], ref.std_err[ok], rtol=1e-12)   # survfit: SE of log S
    # S(t), S(t-) and the carried value beyond the last time
    assert km.at(-1.0) == 1.0 and km.at(km.time[-1] + 100) == km.surv[-1]
    assert km.at(km.time[3], left=True) == km.surv[2] and km.at(km.time[3]) == km.surv[3]


def test_events_in_intervals_match_summary_survfit(r_engine):
    """Issue 13 item 5: n_event (and n_censor) at given times count the events (censorings) in each
    interval, as summary(survfit); numbers_at_risk is that table, one row per group and time."""
    ref = r_engine.run_r("""local({s <- summary(survival::survfit(survival::Surv(time, status - 1) ~ sex,
        data = survival::lung), times = c(100, 365, 730, 1000), extend = TRUE); data.frame(n_event = s$n.event,
        n_risk = s$n.risk, n_censor = s$n.censor, surv = s$surv)})""")
    lung = r_engine.run_r("survival::lung[, c('time', 'status', 'sex')]").astype(float)
    lung["status"] -= 1
    km = sv.kaplan_meier("time", "status", "sex", data=lung, times=[100, 365, 730, 1000], engine="python")
    for col in ("n_event", "n_risk", "n_censor"):
        np.testing.assert_array_equal(km.at_times[col], ref[col])
    np.testing.assert_allclose(km.at_times.surv, ref.surv, rtol=1e-13)
    for engine in ("python", "R"):
        nar = sv.numbers_at_risk("time", "status", "sex", times=[100, 365, 730, 1000], data=lung, engine=engine)
        np.testing.assert_array_equal(nar[["n_risk", "n_event", "n_censor"]], ref[["n_risk", "n_event", "n_censor"]])


def test_reverse_kaplan_meier_both_tie_conventions(r_engine, gbsg):
    t, e = gbsg.rfstime.to_numpy(), gbsg.status.to_numpy()
    ref = r_engine.run_r(f"""local({{t <- {_vec(t)}; e <- {_vec(e)};
        f <- survival::survfit(survival::Surv(t, 1 - e) ~ 1);
        p <- prodlim::prodlim(prodlim::Hist(t, e) ~ 1, reverse = TRUE);
        list(tf = f$time, sf = f$surv, sp = predict(p, times = f$time))}})""")
    rev = sc.reverse_kaplan_meier(t, e, deaths_first=False)
    np.testing.assert_allclose(rev.time, ref["tf"])
    np.testing.assert_allclose(rev.surv, ref["sf"], rtol=1e-13)
    ipcw = sc.reverse_kaplan_meier(t, e, deaths_first=True)
    np.testing.assert_allclose(ipcw.at(ref["tf"]), ref["sp"], rtol=1e-12)
    tied = np.intersect1d(t[e == 1], t[e == 0])      # the conventions differ exactly where deaths tie
    assert tied.size > 0 and not np.allclose(rev.at(tied), ipcw.at(tied))


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_fit_baseline_and_survival_match_coxph(r_engine, gbsg, ties):
    t, e = gbsg.rfstime.to_numpy(), gbsg.status.to_numpy()
    X = np.column_stack([gbsg.age, np.log1p(gbsg.nodes), np.log1p(gbsg.pgr), gbsg.hormon])
    cols = ", ".join(f"x{j} = {_vec(X[:, j])}" for j in range(X.shape[1]))
    ref = r_engine.run_r(f"""local({{d <- data.frame(t = {_vec(t)}, e = {_vec(e)}, {cols});
        f <- survival::coxph(survival::Surv(t, e) ~ ., data = d, ties = '{ties}');
        b <- survival::basehaz(f, centered = FALSE);
        s <- summary(survival::survfit(f, newdata = d[1:3, ]), times = c(365, 1000, 2000));
        list(coef = unname(coef(f)), se = unname(sqrt(diag(vcov(f)))), loglik = f$loglik,
             bt = b$time, bh = b$hazard, surv = as.vector(s$surv))}})""")
    fit = sc.fit_cox(X, t, e, ties=ties)
    np.testing.assert_allclose(fit.coef, ref["coef"], rtol=1e-7)          # coxph stops at eps = 1e-9
    np.testing.assert_allclose(fit.se, ref["se"], rtol=1e-7)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], ref["loglik"], rtol=1e-11)
    ut, H = sc.baseline_cumhaz(t, e, X @ fit.coef, ties=ties)
    np.testing.assert_allclose(sc.step_at(ut, H, ref["bt"], 0.0), ref["bh"], rtol=1e-7)
    S = sc.cox_survival(ut, H, X[:3] @ fit.coef, [365, 1000, 2000])
    np.testing.assert_allclose(S, np.asarray(ref["surv"], float).reshape(3, 3), rtol=1e-7)  # curve x time
    beyond = sc.cox_survival(ut, H, X[:3] @ fit.coef, [ut[-1], ut[-1] + 1000])
    np.testing.assert_array_equal(beyond[:, 0], beyond[:, 1])   # the one rule: carried beyond the last time


def test_breslow_loglik_of_a_fixed_predictor_matches_coxph(r_engine, gbsg):
    t, e = gbsg.rfstime.to_numpy(), gbsg.status.to_numpy()
    eta = 0.02 * gbsg.age.to_numpy() - 0.3 * gbsg.hormon.to_numpy()
    ref = r_engine.run_r(f"""survival::coxph(survival::Surv({_vec(t)}, {_vec(e)}) ~ offset({_vec(eta)}),
        ties = 'breslow')$loglik""")
    assert sc.cox_loglik(eta, t, e) == pytest.approx(float(np.atleast_1d(ref)[0]), rel=1e-12)
    model = sc.CoxModel(eta[:, None], t, e, ties="breslow")
    assert model.evaluate(np.array([1.0]))[0] == pytest.approx(sc.cox_loglik(eta, t, e), rel=1e-12)


def test_cox_monotone_likelihood_and_no_events_raise():
    t = np.arange(1.0, 11.0)
    with pytest.raises(RuntimeError, match="monotone likelihood"):
        sc.fit_cox(np.r_[np.ones(5), np.zeros(5)], t, np.r_[np.ones(5), np.zeros(5)])
    with pytest.raises(RuntimeError, match="no events"):
        sc.fit_cox(np.arange(10.0), t, np.zeros(10))
    with pytest.raises(ValueError, match="ties"):
        sc.CoxModel(np.arange(10.0), t, np.ones(10), ties="exact")
