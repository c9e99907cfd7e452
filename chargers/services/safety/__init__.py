"""Safety: the limits the backend enforces on every charging session whatever the
pile's firmware (`limits`: over the port's power, too long, 充满自停), and the risk
grade of every session from its curve (`risk`: pure, per reading; `cards`: each
card's usual charge, staff's battery checks, the riskiest cards; `review`: the job's
heavier pass). Imports devices, charging, alerts and billing (to tell the card's
holder through their account's channels)."""
