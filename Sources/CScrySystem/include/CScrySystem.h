int scry_placeholder(void);
