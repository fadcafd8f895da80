"""kurspakke: the domain — models, database session, and services. Knows neither Flask nor Canvas."""
