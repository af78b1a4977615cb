// Class dashboard charts (see tutor/dashboards).
