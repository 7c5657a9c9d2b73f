"""The SLA sweep: steps past their mutu baku, cases past the lead-time target, and residents
who keep a case waiting (a reminder, then expiry). Run every few minutes (Cloud Scheduler).

Each thing is done once however often the sweep runs, and however many sweeps run at once:
what was recorded is kept on the case (`Case.sla_flags`) and written with the version-checked
`mutate`, whose change re-checks the flags on a fresh copy after a concurrent update; reminders
are notify tasks with deterministic names; the expiry notice is sent under a lease taken on the
case and under a deterministic message id.

It reads only what is due: each write of a case records when the sweep next has something to
do with it (`sapa.domain.agenda`, indexed by the store), and a pass reads the cases whose moment
has come, however many cases are open, plus the claims each officer holds (a claim an officer
may no longer hold follows the roster, not a time).

What it measures (first returning to the queue any claim whose officer may no longer hold it:
see `services.staff_admin`):

- the waiting step's open run: its handling time once claimed, else the time since it was
  ready, against the step's mutu baku. One "sla_breach" audit event per run; once the run is
  `grace_minutes` past the mutu baku, one "sla_escalated" event naming the role it goes to
  (the head of division). Runs already finished are not looked at: the timeline shows them.
- the lead time of an open case against the SOP's target: one "lead_time_breach" event.
- a case waiting on the resident (`[residents.*]` in sla.toml), counted from the moment it
  entered that state: one reminder per wait, then "expire" (as the system) and the expiry
  notice.

Each officer's step is measured on its own clock (sla.toml `[clocks]`): on the office's
working hours by default, so a step taken at 15:55 on a Friday uses nothing over the weekend or
a public holiday, and its breach and escalation come once the office has been open long enough;
breach and grace are both counted on that clock. The residents' reminders and expiry run on raw
clock time (a resident can fill the guest book on a Sunday).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from sapa.bootstrap import Container
from sapa.domain.agenda import (
    EXPIRY_NOTICE,
    complaint_flag,
    complaints_to_flag,
    notice_due,
    run_key,
    waiting_since,
)
from sapa.domain.case import Actor, Case, Complaint
from sapa.domain.errors import PermanentError, TransientError
from sapa.domain.sla import SlaConfig, format_duration, step_timing, timeline
from sapa.domain.staff import Roster, claim_return_reason, stale_claim
from sapa.services import due, notify
from sapa.services.names import task_name
from sapa.services.unit import mutate, outbox_task
from sapa.services.workflow import correction_summary

log = logging.getLogger(__name__)

COUNTS = (
    "breaches",
    "escalations",
    "lead_time_breaches",
    "reminders",
    "expired",
    "claims_returned",
    "complaints_late",
)
# Due cases read per page; a pass reads every case that is due, page after page.
PAGE = 200


def config_for(c: Container) -> SlaConfig:
    """The escalation and resident-wait settings of the office's sla.toml (`Container.sla`,
    read once per file), checked against the SOP."""
    cfg = c.sla.sweep
    for wait in cfg.residents:
        if not any(t.event == "expire" for t in c.sop.events_from(wait.state)):
            raise ValueError(f"sla: the SOP cannot expire a case in state {wait.state!r}")
    clocks = c.sla_clocks
    unknown = sorted(set(clocks.roles) - c.sop.roles) + sorted(
        set(clocks.steps) - {s.key for s in c.sop.steps}
    )
    if unknown:
        raise ValueError(f"sla: [clocks] names what the SOP does not know: {unknown}")
    return cfg


def sweep(c: Container, *, page: int = PAGE) -> dict[str, int]:
    """One pass over the cases whose due time has come and the claims of every officer;
    returns what this pass did (a repeat does nothing)."""
    cfg = config_for(c)
    now = c.clock.now()
    roster = c.store.staff_roster()  # after `now`: claims made since are not judged by it
    agenda = c.agenda()
    open_states = sorted(c.sop.states - c.sop.terminal_states)
    due.refresh(c, "sla", agenda.sla_fingerprint, open_states)
    done: Counter[str] = Counter()
    for listed in due.each_due(c.store, "sla", now, page):
        if listed.case.state == "expired":
            # an expiry notice that a sweep decided but did not get out (it died, or
            # WhatsApp was down), or the one the pass that expired the case is sending
            if _notice_takeable(listed.case, now):
                _send_expiry_notice(c, listed.case.id, now)
            if not late_complaints(listed.case, now):
                continue
        _visit(c, cfg, listed.case, now, roster, done)
    # A claim its officer may no longer hold follows a change of the roster, not a due time.
    for member in roster.officers:
        for held in due.claims_of(c.store, member.email):
            if stale_claim(held, c.sop, roster, as_of=now) is not None:
                _visit(c, cfg, held, now, roster, done)
    result = {k: done[k] for k in COUNTS}
    if any(result.values()):
        log.info("sla sweep", extra={"counts": result})
    return result


def _visit(
    c: Container, cfg: SlaConfig, listed: Case, now: datetime, roster: Roster, done: Counter[str]
) -> None:
    """Record what is due on one case (and send its expiry notice if it expired)."""
    # A dry run on a copy of the listed case first: no write when nothing is to be recorded.
    if not _check(c, cfg, listed.model_copy(deep=True), now, roster):
        # Due by its index, yet nothing to do: due times from an older configuration, or a
        # case saved by a process that had none. Computing them again moves them on.
        c.store.recount(listed.id)
        return
    case, did = mutate(c, listed.id, lambda case: _check(c, cfg, case, now, roster))
    done.update(did)
    if did["expired"]:
        _send_expiry_notice(c, case.id, now)


def _may_take(c: Container, case: Case, role: str) -> list[str]:
    """Staff in `role` who may act on the case (a counter officer only in its kecamatan)."""
    return sorted(
        s.email
        for s in c.staff.all()
        if role in s.roles and (s.kecamatan is None or s.kecamatan == case.kecamatan)
    )


def _alert_officers(
    c: Container, case: Case, kind: str, emails: list[str], key: str, params: dict[str, str]
) -> None:
    """Queue the officer alerts with the change (the outbox), once per `key` (a run, a
    complaint), kind and officer: only staff with a WhatsApp number get one
    (notify.notify_staff). One task per officer, so one slow send never holds up the others
    past the queue's deadline."""
    for email in emails:
        member = c.staff.get(email)
        if member is None or not member.wa_number:
            continue
        outbox_task(
            case,
            "notify",
            {"case_id": case.id, "kind": kind, "staff": [email], "params": params},
            name=task_name("notify", case.id, kind, key, email),
        )


def _step_params(c: Container, step: str, over: float) -> dict[str, str]:
    return {"step": c.sop.step(step).kegiatan, "over": format_duration(over)}


def _check(c: Container, cfg: SlaConfig, case: Case, now: datetime, roster: Roster) -> Counter[str]:
    """Record on `case` whatever is due and not yet recorded; returns what it did. Touches
    only the case (it runs again on a fresh copy after a concurrent update)."""
    sop = c.sop
    did: Counter[str] = Counter()
    _complaints_late(c, cfg, case, now, did)
    if not case.is_open(sop):
        return did
    # A claim its officer may no longer hold (deactivated, moved) goes back to the queue
    # first: the admin's change returns it at once; this catches what an interrupted change
    # or an instance's cached directory (a claim taken just after the change) left behind.
    holder = stale_claim(case, sop, roster, as_of=now)
    if holder is not None:
        member = roster.get(holder)
        reason = claim_return_reason(member) if member is not None else "officer_unknown"
        case.return_claim(sop, holder, now, reason=reason)
        did["claims_returned"] += 1
    system = Actor.system()
    clocks = c.sla_clocks
    flags = case.sla_flags
    stamp = now.isoformat()

    run = case.current_run(sop)
    key = run_key(case, sop)
    if run is not None and key is not None:
        timing = step_timing(sop, run, now, clocks)
        claimed = run.claimed_at is not None
        elapsed = timing.sla_handling_seconds if claimed else timing.sla_waiting_seconds
        over = (elapsed or 0.0) - timing.mutu_baku_seconds
        if over > 0 and f"breach:{key}" not in flags:
            flags[f"breach:{key}"] = stamp
            case.note(
                system,
                "sla_breach",
                now,
                step=run.step,
                run=key,
                seconds_over=round(over),
                mutu_baku_seconds=timing.mutu_baku_seconds,
                measured="handling" if claimed else "waiting",
                clock=timing.clock,
                claimed_by=run.claimed_by,
            )
            did["breaches"] += 1
            if cfg.officer_whatsapp:
                who = [run.claimed_by] if run.claimed_by else _may_take(c, case, timing.step.role)
                params = _step_params(c, run.step, over)
                _alert_officers(c, case, "officer_sla_breach", who, key, params)
        if over >= cfg.grace.total_seconds() and over > 0 and f"escalated:{key}" not in flags:
            to = cfg.escalation_role(timing.step.role)
            flags[f"escalated:{key}"] = stamp
            case.note(
                system,
                "sla_escalated",
                now,
                step=run.step,
                run=key,
                seconds_over=round(over),
                grace_minutes=round(cfg.grace.total_seconds() / 60),
                clock=timing.clock,
                escalate_to=to,
            )
            did["escalations"] += 1
            if cfg.officer_whatsapp:
                heads = _may_take(c, case, to)
                params = _step_params(c, run.step, over)
                _alert_officers(c, case, "officer_sla_escalated", heads, key, params)

    tl = timeline(sop, case, now, clocks)
    if tl.lead_time_breached and "lead_time" not in flags:
        flags["lead_time"] = stamp
        case.note(
            system,
            "lead_time_breach",
            now,
            lead_time_seconds=round(tl.sla_lead_time_seconds),
            target_seconds=round(tl.lead_time_target_seconds),
            seconds_over=round(tl.sla_lead_time_seconds - tl.lead_time_target_seconds),
            clock=tl.lead_time_clock,
        )
        did["lead_time_breaches"] += 1

    wait = cfg.resident_wait(case.state)
    if wait is not None:
        since = waiting_since(case)
        waited = now - since
        if waited >= wait.expire_after:
            reason = wait.expiry_reason()
            case.apply(
                sop,
                "expire",
                system,
                now,
                reason=reason,
                waited_seconds=round(waited.total_seconds()),
            )
            flags[EXPIRY_NOTICE] = "due"
            did["expired"] += 1
        elif waited >= wait.remind_after:
            flag = f"reminder:{case.state}:{since.isoformat()}"
            if flag not in flags:
                flags[flag] = stamp
                params = {}
                if wait.name == "correction":
                    params["reason"] = correction_summary(c, case)
                outbox_task(
                    case,
                    "notify",
                    {"case_id": case.id, "kind": wait.reminder_kind, "params": params},
                    name=task_name("notify", case.id, "reminder", case.state, since.isoformat()),
                )
                case.note(
                    system,
                    "sla_reminder",
                    now,
                    kind=wait.reminder_kind,
                    waited_seconds=round(waited.total_seconds()),
                )
                did["reminders"] += 1
    return did


def late_complaints(case: Case, now: datetime) -> list[Complaint]:
    """The case's complaints past their response time with no answer, not yet recorded late;
    open or closed case alike."""
    return [k for k in complaints_to_flag(case) if now > k.due_at]


def _complaints_late(
    c: Container, cfg: SlaConfig, case: Case, now: datetime, did: Counter[str]
) -> None:
    """A complaint's response time ran out unanswered: recorded once on the case, and the
    heads (kabid, then kadis) are alerted on WhatsApp (the template), so it is not left."""
    for k in late_complaints(case, now):
        case.sla_flags[complaint_flag(k)] = now.isoformat()
        over = (now - k.due_at).total_seconds()
        case.note(Actor.system(), "complaint_late", now, complaint=k.id, seconds_over=round(over))
        did["complaints_late"] += 1
        if not cfg.officer_whatsapp:
            continue
        heads = _may_take(c, case, "kabid") or _may_take(c, case, "kadis")
        params = {"complaint": k.id, "over": format_duration(over)}
        _alert_officers(c, case, "officer_complaint_late", heads, k.id, params)


# ---- the expiry notice ----------------------------------------------------------------------
# Sent here rather than by a notify task: the notify task drops messages to closed cases, and
# the case is closed (expired) before the resident is told, so a resident who submits at that
# moment is never told that an open request was closed.


def _notice_takeable(case: Case, now: datetime) -> bool:
    at = notice_due(case)
    return at is not None and at <= now


def _send_expiry_notice(c: Container, case_id: str, now: datetime) -> str | None:
    """Tell the resident their case expired, once: the sweep that takes the lease sends it."""

    def take(case: Case) -> bool:
        if not _notice_takeable(case, now):
            return False
        case.sla_flags[EXPIRY_NOTICE] = f"sending@{now.isoformat()}"
        return True

    case, mine = mutate(c, case_id, take)
    if not mine:
        return None
    message_id = f"out:{task_name('notify', case.id, 'expired')}"
    if c.store.message_exists(message_id):
        result = "sent"  # a sweep sent it and died before saying so
    else:
        try:
            result = notify.send(
                c, case, "expired", {"reason": case.closed_reason or ""}, message_id
            )
        except TransientError:
            log.warning("expiry notice not sent, will retry", extra={"case_id": case.id})
            return None  # the lease runs out and a later sweep sends it
        except PermanentError:
            result = "refused"  # recorded on the case by send()

    def record(case: Case) -> None:
        case.sla_flags[EXPIRY_NOTICE] = f"{result}@{now.isoformat()}"

    mutate(c, case_id, record)
    return result
