print("algate")
