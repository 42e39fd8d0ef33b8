"""The report's words in each supported locale: labels, month names."""

from __future__ import annotations

from typing import Final

from churn.settings import SUPPORTED_LOCALES

LABELS: Final[dict[str, dict[str, str]]] = {
    "en_US": {
        "title": "Weekly churn report",
        "week": "Week",
        "as_of": "as of",
        "vs_previous": "Changes are against the previous week.",
        "churn_section": "Churn",
        "churn_rate": "Churn rate",
        "churned": "Churned",
        "of": "of",
        "active": "Active customers",
        "new": "New customers",
        "reactivated": "Reactivated",
        "lapsed_share": "Lapsed share",
        "at_risk": "At risk",
        "revenue_at_risk": "Revenue at risk",
        "churn_rule": (
            "A customer is churned when their last completed order is more than {days} days old."
        ),
        "at_risk_rule": "At risk: active, but no completed order for more than {days} days.",
        "orders_section": "Orders",
        "orders_placed": "Orders placed",
        "cancelled": "Cancelled",
        "cancellation_rate": "Cancellation rate",
        "revenue": "Revenue",
        "top_product": "Top product by revenue",
        "most_expensive": "Highest price paid for one unit",
        "partial_week": (
            "Partial week: the data ends on {day}, so {covered} of its 7 days are covered; "
            "compare with care."
        ),
        "quiet_days": (
            "No orders on {days}, though the 4 weeks before had about {typical} a day: "
            "the data may be incomplete."
        ),
        "and": "and",
        "run_link": "This run in the Prefect UI",
        "not_available": "n/a",
        "percentage_points": "pp",
        "caption_title": "Churn and cohort retention",
        "chart_churn_title": "Weekly churn rate (last 12 weeks)",
        "chart_churn_x": "Week ending",
        "chart_churn_y": "Churn rate",
        "chart_cohort_title": "Cohort retention",
        "chart_cohort_x": "Months since first order",
        "chart_cohort_y": "Cohort (month of first order)",
        "chart_retention": "Retention",
        "no_data": "No data yet",
    },
    "pt_BR": {
        "title": "Relatório semanal de evasão (churn)",
        "week": "Semana",
        "as_of": "posição em",
        "vs_previous": "Variações em relação à semana anterior.",
        "churn_section": "Evasão",
        "churn_rate": "Taxa de evasão",
        "churned": "Clientes perdidos",
        "of": "de",
        "active": "Clientes ativos",
        "new": "Novos clientes",
        "reactivated": "Reativados",
        "lapsed_share": "Parcela de inativos",
        "at_risk": "Em risco",
        "revenue_at_risk": "Receita em risco",
        "churn_rule": (
            "Um cliente é considerado perdido quando seu último pedido concluído "
            "tem mais de {days} dias."
        ),
        "at_risk_rule": "Em risco: ativo, mas sem pedido concluído há mais de {days} dias.",
        "orders_section": "Pedidos",
        "orders_placed": "Pedidos feitos",
        "cancelled": "Cancelados",
        "cancellation_rate": "Taxa de cancelamento",
        "revenue": "Receita",
        "top_product": "Produto com maior receita",
        "most_expensive": "Maior preço pago por uma unidade",
        "partial_week": (
            "Semana parcial: os dados terminam em {day}, então {covered} dos 7 dias estão "
            "cobertos; compare com cuidado."
        ),
        "quiet_days": (
            "Nenhum pedido em {days}, embora as 4 semanas anteriores tivessem cerca de "
            "{typical} por dia: os dados podem estar incompletos."
        ),
        "and": "e",
        "run_link": "Esta execução na interface do Prefect",
        "not_available": "n/d",
        "percentage_points": "p.p.",
        "caption_title": "Evasão e retenção por coorte",
        "chart_churn_title": "Taxa de evasão semanal (últimas 12 semanas)",
        "chart_churn_x": "Semana até",
        "chart_churn_y": "Taxa de evasão",
        "chart_cohort_title": "Retenção por coorte",
        "chart_cohort_x": "Meses desde o primeiro pedido",
        "chart_cohort_y": "Coorte (mês do primeiro pedido)",
        "chart_retention": "Retenção",
        "no_data": "Sem dados ainda",
    },
}

MONTHS_EN: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
MONTHS_PT: Final = (
    "jan",
    "fev",
    "mar",
    "abr",
    "mai",
    "jun",
    "jul",
    "ago",
    "set",
    "out",
    "nov",
    "dez",
)


def labels_for(locale: str) -> dict[str, str]:
    """The label dictionary of a supported locale; ValueError names the supported ones."""
    try:
        return LABELS[locale]
    except KeyError:
        raise ValueError(
            f"unsupported locale {locale!r}; supported: {', '.join(SUPPORTED_LOCALES)}"
        ) from None
