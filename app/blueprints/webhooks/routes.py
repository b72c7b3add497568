"""Routes of the webhooks blueprint, under /admin/webhooks.

The service decides who may (owners and admins: Forbidden -> 403 page) and what is valid; a
refused form comes back with its field messages and a 422. The signing secret is shown once,
after the POST/redirect/GET (`once`). Deliveries are only queued here: the notify worker
sends them, never a web request.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField, SubmitField, widgets

from app.blueprints import once
from app.blueprints.webhooks import bp
from app.services import notifications
from app.services.errors import QuotaExceeded, ValidationError


class WebhookForm(FlaskForm):
    url = StringField("URL that receives the events")
    events = SelectMultipleField(
        "Events to send",
        choices=list(notifications.EVENT_LABELS.items()),
        option_widget=widgets.CheckboxInput(),
        widget=widgets.ListWidget(prefix_label=False),
        validate_choice=False,  # the service refuses unknown events with its own message
    )
    submit = SubmitField("Add webhook")


@bp.before_request
@login_required
def require_login() -> None:
    """Every webhook page needs a logged-in user; the service decides the role."""


def _list_page(form: WebhookForm, status: int = 200):
    hooks = notifications.list_webhooks(current_user)
    return render_template("webhooks/index.html", hooks=hooks, form=form), status


@bp.get("/")
def index():
    return _list_page(WebhookForm(events=list(notifications.EVENT_LABELS)))


@bp.post("/")
def create():
    form = WebhookForm()
    if not form.validate_on_submit():
        return _list_page(form, 422)
    try:
        hook, secret = notifications.create_webhook(current_user, form.url.data, form.events.data)
    except (ValidationError, QuotaExceeded) as exc:
        for name, message in exc.fields.items():
            getattr(form, name, form.url).errors = [message]
        return _list_page(form, 422)
    once.keep("webhook_secret", id=hook.id, secret=secret)
    flash("Webhook added. Copy its signing secret now: it is shown only once.", "success")
    return redirect(url_for("webhooks.detail", webhook_id=hook.id))


@bp.get("/<int:webhook_id>")
def detail(webhook_id: int):
    hook = notifications.get_webhook(current_user, webhook_id)
    kept = once.take("webhook_secret")
    secret = kept["secret"] if kept and kept.get("id") == hook.id else None
    return render_template(
        "webhooks/detail.html",
        hook=hook,
        secret=secret,
        deliveries=notifications.deliveries(current_user, hook.id),
        labels=notifications.EVENT_LABELS,
    )


@bp.post("/<int:webhook_id>/test")
def send_test(webhook_id: int):
    notifications.send_test(current_user, webhook_id)
    flash("A test event is queued; the delivery log shows how the receiver answered.", "success")
    return redirect(url_for("webhooks.detail", webhook_id=webhook_id))


@bp.post("/<int:webhook_id>/delete")
def delete(webhook_id: int):
    notifications.delete_webhook(current_user, webhook_id)
    flash("Webhook deleted; nothing more is sent to it.", "success")
    return redirect(url_for("webhooks.index"))


@bp.post("/deliveries/<int:delivery_id>/resend")
def resend(delivery_id: int):
    copy = notifications.resend(current_user, delivery_id)
    flash(f"Delivery #{delivery_id} is queued again as #{copy.id}.", "success")
    back = request.form.get("webhook_id", "")
    if back.isascii() and back.isdigit() and copy.webhook_id == int(back):
        return redirect(url_for("webhooks.detail", webhook_id=copy.webhook_id))
    return redirect(url_for("webhooks.index"))
