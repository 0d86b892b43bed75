"""Reports rebuilt from MLflow runs alone (`ssmoe report`)."""
