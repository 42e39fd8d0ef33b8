"""The outlook's lines in the Telegram report: why churn moved, and the prediction.

Pure code, like `text`: every line closes the tags it opens and every data value is
escaped. Customers appear by id only. The words live here, per locale, beside the
report's own labels.
"""

from __future__ import annotations

import html
from typing import Final

from churn.report.figures import ReportData
from churn.report.formatting import (
    format_count_change,
    format_date,
    format_int,
    format_money,
    format_percent,
)
from churn.report.outlook import ChurnMovement, PredictionFigures, SegmentChange

MAX_REASON_CHARS: Final = 300
MAX_SEGMENT_CHARS: Final = 60

OUTLOOK_LABELS: Final[dict[str, dict[str, str]]] = {
    "en_US": {
        "movement_section": "Why churn moved",
        "movement": "Churned {change} against the week before",
        "movement_none": "no segment moved",
        "cohort": "cohort {segment}",
        "value_tier": "{segment}",
        "last_category": "last bought {segment}",
        "1-3 purchase days": "1-3 purchase days",
        "4-9 purchase days": "4-9 purchase days",
        "10+ purchase days": "10+ purchase days",
        "prediction_section": "Churn prediction (customer model)",
        "predicted_to_lapse": "Predicted to lapse",
        "of_active": "of {active} active",
        "revenue_at_stake": "Expected revenue at stake, next 90 days",
        "top_customers": "Most at stake (customer ids)",
        "backtest": (
            "Backtest: of the {predicted} customers predicted to lapse on {date}, "
            "{bought} ({share}) have bought since."
        ),
        "backtest_none_lapsing": "Backtest: no customer was predicted to lapse on {date}.",
        "backtest_missing": "Backtest: no prediction was stored for {date}.",
        "lapse_rule": (
            "Predicted to lapse: active by the {days}-day rule, but the customer model gives "
            "them less than a {threshold} chance of still being a customer."
        ),
        "unavailable": "Prediction unavailable: {reason}.",
    },
    "pt_BR": {
        "movement_section": "Por que a evasão mudou",
        "movement": "Clientes perdidos: {change} em relação à semana anterior",
        "movement_none": "nenhum segmento mudou",
        "cohort": "coorte {segment}",
        "value_tier": "{segment}",
        "last_category": "última compra em {segment}",
        "1-3 purchase days": "1-3 dias de compra",
        "4-9 purchase days": "4-9 dias de compra",
        "10+ purchase days": "10+ dias de compra",
        "prediction_section": "Previsão de evasão (modelo de clientes)",
        "predicted_to_lapse": "Previstos para sair",
        "of_active": "de {active} ativos",
        "revenue_at_stake": "Receita esperada em jogo, próximos 90 dias",
        "top_customers": "Mais em jogo (ids de clientes)",
        "backtest": (
            "Verificação: dos {predicted} clientes previstos para sair em {date}, "
            "{bought} ({share}) compraram desde então."
        ),
        "backtest_none_lapsing": "Verificação: nenhum cliente foi previsto para sair em {date}.",
        "backtest_missing": "Verificação: nenhuma previsão foi guardada para {date}.",
        "lapse_rule": (
            "Previstos para sair: ativos pela regra de {days} dias, mas com menos de "
            "{threshold} de chance, pelo modelo de clientes, de ainda serem clientes."
        ),
        "unavailable": "Previsão indisponível: {reason}.",
    },
}


def _labels(locale: str) -> dict[str, str]:
    return OUTLOOK_LABELS.get(locale, OUTLOOK_LABELS["en_US"])


def _heading(emoji: str, text: str) -> str:
    return f"{emoji} <b>{html.escape(text)}</b>"


def _note(text: str) -> str:
    return f"<i>{html.escape(text)}</i>"


def _segment(change: SegmentChange, locale: str) -> str:
    """A segment and its change, as in `cohort 2025-Q3 <b>+11</b>`; names from the data
    are bounded and escaped."""
    labels = _labels(locale)
    name = " ".join(change.segment.split())[:MAX_SEGMENT_CHARS]
    if change.segment_type == "value_tier":
        name = labels.get(name, name)
    shown = labels.get(change.segment_type, "{segment}").format(segment=name)
    delta = format_count_change(change.current, change.previous, locale)
    return f"{html.escape(shown)} <b>{delta}</b>"


def movement_lines(movement: ChurnMovement, locale: str) -> list[str]:
    """One heading and one line: the week's change in churned customers and the segment
    of each type that moved most."""
    labels = _labels(locale)
    change = format_count_change(movement.total_change, 0, locale)
    movers = movement.biggest_movers()
    detail = (
        " · ".join(_segment(mover, locale) for mover in movers)
        if movers
        else html.escape(labels["movement_none"])
    )
    headline = html.escape(labels["movement"].format(change=change))
    return [_heading("🔎", labels["movement_section"]), f"{headline}: {detail}"]


def _backtest_line(prediction: PredictionFigures, locale: str) -> str | None:
    backtest, labels = prediction.backtest, _labels(locale)
    if backtest is None:
        return None
    day = format_date(backtest.predicted_on, locale)
    if not backtest.stored:
        return html.escape(labels["backtest_missing"].format(date=day))
    share = backtest.bought_share
    if share is None:
        return html.escape(labels["backtest_none_lapsing"].format(date=day))
    return html.escape(
        labels["backtest"].format(
            predicted=format_int(backtest.predicted_to_lapse, locale),
            date=day,
            bought=format_int(backtest.bought_since, locale),
            share=format_percent(share, locale),
        )
    )


def prediction_lines(prediction: PredictionFigures, locale: str) -> list[str]:
    """The prediction's lines, or the one line saying why it is unavailable."""
    labels = _labels(locale)
    heading = _heading("🔮", labels["prediction_section"])
    if prediction.unavailable is not None:
        reason = " ".join(prediction.unavailable.split())
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 1].rstrip() + "…"
        return [heading, html.escape(labels["unavailable"].format(reason=reason.rstrip(".")))]
    of_active = labels["of_active"].format(active=format_int(prediction.active_customers, locale))
    lines = [
        heading,
        f"{html.escape(labels['predicted_to_lapse'])}: "
        f"<b>{format_int(prediction.predicted_to_lapse, locale)}</b> {html.escape(of_active)}",
        f"{html.escape(labels['revenue_at_stake'])}: "
        f"<b>{format_money(prediction.revenue_at_stake_90d, locale)}</b>",
    ]
    if prediction.top_customer_ids:
        ids = ", ".join(f"#{int(customer_id)}" for customer_id in prediction.top_customer_ids)
        lines.append(f"{html.escape(labels['top_customers'])}: {ids}")
    backtest = _backtest_line(prediction, locale)
    if backtest is not None:
        lines.append(backtest)
    threshold = format_percent(prediction.lapse_threshold, locale, decimals=0)
    lines.append(
        _note(labels["lapse_rule"].format(days=prediction.churn_window_days, threshold=threshold))
    )
    return lines


def outlook_sections(data: ReportData) -> list[list[str]]:
    """The outlook's sections of the report, in order (none when nothing was read)."""
    sections = []
    if data.churn_movement is not None:
        sections.append(movement_lines(data.churn_movement, data.locale))
    if data.prediction is not None:
        sections.append(prediction_lines(data.prediction, data.locale))
    return sections
